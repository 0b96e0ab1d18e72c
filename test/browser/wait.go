package browser

import (
	"context"
	"fmt"
	"time"

	"github.com/chromedp/chromedp"
)

// WaitVisible waits up to timeout for the element that sel selects to be in
// ctx's tab and visible, for example chromedp.CSS("#apps table"). chromedp's
// own WaitVisible waits as long as its context lives, so a page that never
// renders the element would hang the test until go test's -timeout.
func WaitVisible[S chromedp.Selectable](ctx context.Context, sel S, timeout time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := chromedp.Do(wctx, chromedp.WaitVisible(sel)); err != nil {
		return fmt.Errorf("waiting %v for %v to be visible: %w", timeout, sel, err)
	}
	return nil
}
