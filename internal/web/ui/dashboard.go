package ui

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/domain"
)

// The timeline chart's geometry, in SVG user units: a bar per week,
// the left margin for the count axis, the bottom for the week labels.
const (
	chartBarW   = 40
	chartGap    = 8
	chartLeft   = 44
	chartTop    = 12
	chartHeight = 140
	chartBottom = 36
)

type dashView struct {
	layout
	D        *app.Dashboard
	Expired  countLink
	Windows  []countLink
	Chart    chartView
	Next24h  planView
	Next7d   planView
	Failing  []failingView
	Blocked  []planRow
	RunsURL  string
	Timeline int
}

type countLink struct {
	// ID names the link for tests and styles: count-expired, count-7d.
	ID    string
	Label string
	Count int
	URL   string
}

type chartView struct {
	Width, Height int
	// AxisX is where the bars stand; Max the tallest bar's count.
	AxisY, AxisX0, AxisX1, Max int
	Bars                       []barView
}

type barView struct {
	X, Y, W, H   int
	LabelX       int
	LabelY       int
	CountY       int
	Label, Dates string
	Count        int
}

type planView struct {
	Title   string
	Rows    []planRow
	Total   int
	More    int
	Partial bool
}

type planRow struct {
	app.PlanItem
	When   string
	AppURL string
}

type failingView struct {
	app.FailingRun
	RunURL, AppURL string
}

// dashboard is the landing page: what expires when (counts and a
// timeline), what failed and needs a human, what rotor will rotate in the
// next day and week, and which connections are failing. Everything is
// server-rendered (the chart is inline SVG), so it reads without
// JavaScript.
func (u *UI) dashboard(w http.ResponseWriter, r *http.Request, scope app.Scope) {
	d, err := u.app.Dashboard(r.Context(), scope)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	v := dashView{layout: u.frame(r, "dashboard", "Dashboard"), D: d, RunsURL: u.base + "/runs", Timeline: app.TimelineWeeks,
		Expired: countLink{ID: "count-expired", Label: "expired", Count: d.Expired, URL: u.listURL(url.Values{"sort": {"expiry"}})}}
	for _, c := range d.Expiring {
		v.Windows = append(v.Windows, countLink{ID: fmt.Sprintf("count-%dd", c.Days), Label: fmt.Sprintf("within %d days", c.Days), Count: c.Count,
			URL: u.listURL(url.Values{"expiring": {strconv.Itoa(c.Days)}, "sort": {"expiry"}})})
	}
	v.Chart = chart(d.Weeks)
	v.Next24h = u.planView("Next 24 hours", d.Next24h, d.At)
	v.Next7d = u.planView("Next 7 days", d.Next7d, d.At)
	for _, f := range d.Failing {
		v.Failing = append(v.Failing, failingView{FailingRun: f, RunURL: u.base + "/runs/" + url.PathEscape(f.Run.ID), AppURL: u.appURL(f.Run.ObjectID)})
	}
	for _, it := range d.Blocked {
		v.Blocked = append(v.Blocked, planRow{PlanItem: it, When: when(it.DueAt, d.At), AppURL: u.appURL(it.Application.ObjectID)})
	}
	u.render(w, r, http.StatusOK, "dashboard", "layout.html", v)
}

func (u *UI) planView(title string, p app.Plan, now time.Time) planView {
	v := planView{Title: title, Total: p.Total, More: p.Total - len(p.Items), Partial: p.Partial}
	for _, it := range p.Items {
		v.Rows = append(v.Rows, planRow{PlanItem: it, When: when(it.DueAt, now), AppURL: u.appURL(it.Application.ObjectID)})
	}
	return v
}

// when says when a plan item is due, for people: "now", "now (overdue
// by 5d)", "in 2h 10m".
func when(at, now time.Time) string {
	switch {
	case at.Equal(now):
		return "now"
	case at.Before(now):
		return "now (due " + domain.HumanDuration(now.Sub(at)) + " ago)"
	}
	return "in " + domain.HumanDuration(at.Sub(now))
}

// chart lays the weeks out as bars scaled to the busiest week.
func chart(weeks []app.WeekCount) chartView {
	c := chartView{Height: chartTop + chartHeight + chartBottom, AxisY: chartTop + chartHeight, AxisX0: chartLeft - 4}
	c.Width = chartLeft + len(weeks)*(chartBarW+chartGap) + chartGap
	c.AxisX1 = c.Width - 2
	for _, wk := range weeks {
		c.Max = max(c.Max, wk.Count)
	}
	scale := max(c.Max, 1)
	for i, wk := range weeks {
		h := wk.Count * chartHeight / scale
		if wk.Count > 0 {
			h = max(h, 2) // a week with any is never invisible
		}
		x := chartLeft + chartGap + i*(chartBarW+chartGap)
		c.Bars = append(c.Bars, barView{
			X: x, W: chartBarW, H: h, Y: c.AxisY - h, Count: wk.Count,
			LabelX: x + chartBarW/2, LabelY: c.AxisY + 16, CountY: c.AxisY - h - 3,
			Label: wk.From.UTC().Format("Jan 2"),
			Dates: wk.From.UTC().Format("Jan 2") + " – " + wk.To.UTC().Format("Jan 2"),
		})
	}
	return c
}
