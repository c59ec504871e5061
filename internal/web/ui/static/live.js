// live.js: a run page's live timeline. The page is complete without it
// (it names its Refresh link); with it, the server's event stream
// (text/event-stream, server-rendered rows) appends each new journal step
// to ol#timeline and keeps #run-state current, until the run is final.
// No inline script anywhere: the CSP is script-src 'self'.
(function () {
  "use strict";
  var timeline = document.getElementById("timeline");
  if (!timeline || !timeline.dataset.events || !window.EventSource) {
    return;
  }
  var state = document.getElementById("run-state");
  var outcome = document.getElementById("run-outcome");
  var note = document.getElementById("live-note");
  var source = new EventSource(timeline.dataset.events);
  if (note) {
    note.textContent = "Live: new steps appear as they happen.";
  }
  source.addEventListener("step", function (e) {
    // The row is rotor's own HTML, escaped by its templates.
    timeline.insertAdjacentHTML("beforeend", e.data);
  });
  source.addEventListener("state", function (e) {
    if (state) {
      state.textContent = e.data;
      state.className = "state run-" + e.data;
    }
  });
  source.addEventListener("done", function (e) {
    source.close();
    if (outcome) {
      outcome.textContent = e.data;
    }
    if (note) {
      note.textContent = "Finished.";
    }
  });
  source.addEventListener("stopped", function (e) {
    source.close();
    if (note) {
      note.textContent = e.data;
    }
  });
})();
