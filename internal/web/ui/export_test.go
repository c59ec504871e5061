package ui

import "time"

// SetLiveTimings paces u's run event streams for a test: poll, heartbeat
// and the stream's limit (zero keeps the default).
func SetLiveTimings(u *UI, poll, heartbeat, limit time.Duration) {
	if poll > 0 {
		u.live.poll = poll
	}
	if heartbeat > 0 {
		u.live.heartbeat = heartbeat
	}
	if limit > 0 {
		u.live.limit = limit
	}
}
