package browser

import (
	"context"
	"fmt"
	"time"

	"github.com/chromedp/chromedp"
)

// Load is what loading the current page cost, from the page's Performance
// API (Navigation and Resource Timing).
type Load struct {
	// TransferBytes is the sum of transferSize over the document and every
	// resource it loaded: bytes on the wire, headers included, after
	// compression. Chromium reports 0 for a resource served from its cache
	// and for a cross-origin resource without Timing-Allow-Origin, so the sum
	// is exact only for an uncached, same-origin page.
	TransferBytes int64

	// Requests is the number of requests: the document and its resources.
	// Chromium keeps at most 250 resource entries unless the page raises the
	// limit (performance.setResourceTimingBufferSize).
	Requests int

	// DOMInteractive is the time from the start of the navigation to the
	// moment the document was parsed (domInteractive): what a person waits
	// for before the page can be used, if its scripts need nothing more.
	DOMInteractive time.Duration

	// Load is the time from the start of the navigation to the end of the
	// load event (loadEventEnd): every image, style sheet and script loaded.
	Load time.Duration
}

// measureLoad waits for the load event to end, since loadEventEnd is 0 until
// then, and reads the timings. Times are milliseconds since the navigation
// started.
const measureLoad = `new Promise(resolve => {
	const measure = () => {
		const nav = performance.getEntriesByType("navigation")[0];
		const res = performance.getEntriesByType("resource");
		let bytes = nav ? nav.transferSize : 0;
		for (const r of res) bytes += r.transferSize;
		resolve({
			hasNavigation: !!nav,
			transferBytes: bytes,
			requests: res.length + (nav ? 1 : 0),
			domInteractive: nav ? nav.domInteractive : 0,
			loadEventEnd: nav ? nav.loadEventEnd : 0,
		});
	};
	// loadEventEnd is set when the load handlers return: measure in the
	// task after them.
	const later = () => setTimeout(measure, 0);
	if (document.readyState === "complete") later();
	else addEventListener("load", later, {once: true});
})`

// loadTimings is measureLoad's result.
type loadTimings struct {
	HasNavigation  bool    `json:"hasNavigation"`
	TransferBytes  int64   `json:"transferBytes"`
	Requests       int     `json:"requests"`
	DOMInteractive float64 `json:"domInteractive"`
	LoadEventEnd   float64 `json:"loadEventEnd"`
}

// PageLoad reports what loading the page now in ctx's tab cost. Call it after
// a navigation (chromedp.Navigate); it waits for the page's load event if it
// has not ended yet, so bound ctx for a page that may never finish loading.
// Navigations inside a single-page app do not count as page loads.
func PageLoad(ctx context.Context) (Load, error) {
	lt, err := chromedp.Run(ctx, chromedp.Evaluate[loadTimings](measureLoad, chromedp.EvalAwaitPromise))
	if err != nil {
		return Load{}, fmt.Errorf("reading the page's performance timings: %w", err)
	}
	if !lt.HasNavigation {
		return Load{}, fmt.Errorf("reading the page's performance timings: the page has no navigation entry (about:blank?)")
	}
	return Load{
		TransferBytes:  lt.TransferBytes,
		Requests:       lt.Requests,
		DOMInteractive: millis(lt.DOMInteractive),
		Load:           millis(lt.LoadEventEnd),
	}, nil
}

// millis turns a DOMHighResTimeStamp, fractional milliseconds, into a
// Duration.
func millis(ms float64) time.Duration {
	return time.Duration(ms * float64(time.Millisecond))
}
