package testpeer

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"
)

// Chromium starts Debian's headless Chromium with a fresh profile and the
// given window size, and returns a chromedp context for it; the browser
// ends with the test. The flags keep it off the network: without them it
// tries Google's hosts at every start.
func Chromium(t testing.TB, width, height int) context.Context {
	t.Helper()
	path := Require(t, "chromium", "chromium")
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Containers (CI) often have a tiny /dev/shm, where Chromium
		// would crash its renderer.
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("chromium: %v", err)
	}
	return ctx
}
