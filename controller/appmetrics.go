package controller

import "time"

// AppMetrics is what the cluster's routers have counted of an app's HTTP
// requests (GET /apps/:id/metrics): the router's
// flynn_router_requests_total and flynn_router_request_duration_seconds,
// summed over the routers that answered and the app's HTTP routes.
//
// The counts are totals since each router started, not rates, so that
// any two readings give the rates between them: a client reads twice and
// divides the differences by the time between (`flynn metrics` does). A
// router that restarts in between starts again from zero, and a total
// that went down says only that.
type AppMetrics struct {
	// Time is when the controller read the routers.
	Time time.Time `json:"time"`
	// Routers is how many routers answered; the counts are theirs.
	Routers int `json:"routers"`
	// RoutersFailed is how many routers discoverd listed that did not
	// answer in time, or not with metrics; their counts are left out.
	RoutersFailed int `json:"routers_failed"`
	// Requests is how many requests the routers proxied, counted when the
	// status of the answer is known (or the client went away first).
	Requests float64 `json:"requests"`
	// ByStatus splits Requests by the answer's status class: "1xx" to
	// "5xx", and StatusClassClientGone.
	ByStatus map[string]float64 `json:"by_status"`
	// Duration is the cumulative histogram of the requests' durations,
	// from their arrival to the end of their answer, lowest bound first.
	// Its last bucket, +Inf, which JSON cannot carry, is DurationCount.
	Duration []Bucket `json:"duration"`
	// DurationCount is how many durations the histogram holds. It trails
	// Requests by the requests whose answer has begun but not ended: a
	// status is counted when the answer begins, a duration when it ends.
	DurationCount float64 `json:"duration_count"`
}

// StatusClassClientGone is the status class (AppMetrics.ByStatus) of
// requests whose client went away before the answer: nginx's 499.
const StatusClassClientGone = "499"

// Bucket is one bucket of a cumulative histogram.
type Bucket struct {
	// UpperBound is the bucket's upper bound (Prometheus's "le"), in
	// seconds.
	UpperBound float64 `json:"le"`
	// Count is how many observations were at most UpperBound.
	Count float64 `json:"count"`
}
