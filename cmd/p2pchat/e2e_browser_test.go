package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/p2pchat/p2pchat/internal/e2e"
)

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// ArtifactsEnv names a directory where the browser test leaves its
// screenshots; without it they go to the test's temporary directory.
const ArtifactsEnv = "P2PCHAT_ARTIFACTS"

// browser starts headless Chromium with a fresh profile and returns the
// context of its first tab. Without chromium the test is skipped, except
// under CI, where a missing browser is a failure.
func browser(t *testing.T, dialogs *atomic.Int32) context.Context {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and %s is missing: install Debian's chromium package", chromiumPath)
		}
		t.Skipf("%s is missing (apt-get install chromium); skipping the browser test", chromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 800),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithListener(func(ev any) {
		if _, ok := ev.(*cdppage.EventJavascriptDialogOpening); ok {
			dialogs.Add(1)
		}
	}))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// tab opens another tab of the same browser.
func tab(t *testing.T, parent context.Context, dialogs *atomic.Int32) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent, chromedp.WithListener(func(ev any) {
		if _, ok := ev.(*cdppage.EventJavascriptDialogOpening); ok {
			dialogs.Add(1)
		}
	}))
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return ctx
}

// do runs browser steps, at most Patience.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, e2e.Patience)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the tab.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, e2e.Patience)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS polls a JavaScript condition in the tab until it holds.
func waitJS(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	do(t, ctx, "wait for "+what, chromedp.Poll[chromedp.Void](cond,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(e2e.Patience)))
}

// jsString quotes s for JavaScript.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// waitShown waits until the text of an element the selector matches
// contains s.
func waitShown(t *testing.T, ctx context.Context, selector, s string) {
	t.Helper()
	waitJS(t, ctx, fmt.Sprintf("%s to show %q", selector, s),
		fmt.Sprintf(`[...document.querySelectorAll(%s)].some((e) => e.textContent.includes(%s))`, jsString(selector), jsString(s)))
}

// typeLine types a line into the page's input and presses Enter.
func typeLine(t *testing.T, ctx context.Context, line string) {
	t.Helper()
	do(t, ctx, "type "+line, chromedp.SendKeys("#input", line+kb.Enter))
}

// screenshot saves a PNG of the tab, scrolled to the newest line, as a test
// artifact.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv(ArtifactsEnv)
	if dir == "" {
		dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(ctx, e2e.Patience)
	defer cancel()
	// A tab behind another one is not painted.
	front := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, cdppage.BringToFront, cdp.Empty{})
		return err
	})
	newest := chromedp.Evaluate[chromedp.Void](`document.getElementById('log').scrollTop = 1e9`)
	if err := chromedp.Do(ctx, front, newest); err != nil {
		t.Fatalf("bring the tab to the front: %v", err)
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

func TestChatPageInARealBrowser(t *testing.T) {
	alice := startNode(t, "Alice", "--http", "127.0.0.1:0")
	const old = 130 // more than two pages of history
	for i := range old {
		alice.Send(fmt.Sprintf("old line %03d", i))
	}
	alice.WaitLine(fmt.Sprintf("<Alice> old line %03d", old-1))
	bob := startNode(t, "Bob", "--peer", alice.Addr(), "--http", "127.0.0.1:0")
	alice.WaitLine("*** Bob joined")
	bob.WaitLine("*** Alice joined")
	ap, bp := webPage(t, alice), webPage(t, bob)
	ap.checkRefusals(t)

	var dialogs atomic.Int32
	aliceTab := browser(t, &dialogs)
	bobTab := tab(t, aliceTab, &dialogs)

	// The token in the address becomes a cookie, and leaves the address.
	do(t, aliceTab, "open Alice's page", chromedp.Navigate(ap.url))
	if loc := eval[string](t, aliceTab, `location.href`); strings.Contains(loc, "token") {
		t.Errorf("the page kept the token in its address: %s", loc)
	}
	if cookie := eval[string](t, aliceTab, `document.cookie`); cookie != "" {
		t.Errorf("the page's script can read a cookie: %q", cookie)
	}
	waitJS(t, aliceTab, "the newest page of history", `document.querySelectorAll('#lines li.chat').length === 50`)
	waitShown(t, aliceTab, "#lines", fmt.Sprintf("old line %03d", old-1))
	if eval[bool](t, aliceTab, `document.querySelector('#lines').textContent.includes('old line 000')`) {
		t.Fatal("the page loaded the whole history at once")
	}

	// Scrolling back loads older lines, a page at a time.
	for pages := 0; !eval[bool](t, aliceTab, `document.querySelector('#older').textContent === 'start of history'`); pages++ {
		if pages > 5 {
			t.Fatal("scrolling back does not reach the start of history")
		}
		n := eval[int](t, aliceTab, `document.querySelectorAll('#lines li.chat').length`)
		do(t, aliceTab, "scroll to the top", chromedp.Evaluate[chromedp.Void](`document.getElementById('log').scrollTop = 0`))
		waitJS(t, aliceTab, "older lines", fmt.Sprintf(`document.querySelectorAll('#lines li.chat').length > %d || document.querySelector('#older').textContent === 'start of history'`, n))
	}
	if first := eval[string](t, aliceTab, `document.querySelector('#lines li.chat .text').textContent`); first != "old line 000" {
		t.Errorf("after scrolling back the first line is %q, want old line 000", first)
	}
	if n := eval[int](t, aliceTab, `document.querySelectorAll('#lines li.chat').length`); n != old {
		t.Errorf("after scrolling back the page holds %d lines, want %d", n, old)
	}

	do(t, bobTab, "open Bob's page", chromedp.Navigate(bp.url))
	waitShown(t, aliceTab, "#status", "live")
	waitShown(t, bobTab, "#status", "live")
	do(t, aliceTab, "mark the page", chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))

	// A line typed into Alice's page reaches Bob's page and terminal.
	typeLine(t, aliceTab, "hello from Alice's page")
	waitShown(t, bobTab, "#lines", "hello from Alice's page")
	bob.WaitLine("<Alice> hello from Alice's page")

	// A line typed in Bob's terminal reaches Alice's page, without reload.
	bob.Send("hello from Bob's terminal")
	waitShown(t, aliceTab, "#lines", "hello from Bob's terminal")

	// Peer-controlled text is text.
	const xss = `<img src=x onerror=alert(1)>`
	bob.Send(xss)
	waitShown(t, aliceTab, "#lines", xss)
	if n := eval[int](t, aliceTab, `document.querySelectorAll('#log img, #log [onerror]').length`); n != 0 {
		t.Errorf("the XSS line made %d elements", n)
	}

	// Commands go through the REPL's parser: a private message and a rename.
	typeLine(t, aliceTab, "/msg Bob psst from the page")
	bob.WaitLine("[private] <Alice> psst from the page")
	waitShown(t, bobTab, "#privlines", "psst from the page")
	waitShown(t, bobTab, "#unread", "1")
	typeLine(t, aliceTab, "/l")
	waitShown(t, aliceTab, "#lines li.output", "Bob")
	typeLine(t, aliceTab, "/nick Alicia")
	bob.WaitLine("Alice is now Alicia")
	waitShown(t, bobTab, "#lines", "Alice is now Alicia")
	waitShown(t, aliceTab, "#me", "Alicia")
	waitShown(t, bobTab, "#connected", "Alicia")

	// Bob's page cannot act on Alice's node: the browser sends the cookie
	// (same site, other port), and the node refuses the foreign Origin.
	// Without CORS headers a readable cross-origin fetch fails outright.
	forged := fmt.Sprintf(`fetch(%s, {method: 'POST', credentials: 'include', headers: {'Content-Type': 'application/json'}, body: '{"text":"forged by a cors fetch"}'}).then(() => 'sent', () => 'blocked')`, jsString(ap.base+"/api/send"))
	if got := eval[string](t, bobTab, forged); got != "blocked" {
		t.Errorf("a cross-origin fetch from Bob's page: %s, want blocked", got)
	}
	blind := fmt.Sprintf(`fetch(%s, {method: 'POST', mode: 'no-cors', credentials: 'include', headers: {'Content-Type': 'text/plain'}, body: '{"text":"forged by a blind post"}'}).then(() => 'done', () => 'failed')`, jsString(ap.base+"/api/send"))
	eval[string](t, bobTab, blind)
	alice.Send("after the forgeries")
	bob.WaitLine("<Alicia> after the forgeries")
	for _, l := range append(alice.Lines(), bob.Lines()...) {
		if strings.Contains(l, "forged") {
			t.Errorf("a forged request got through: %s", l)
		}
	}

	if !eval[bool](t, aliceTab, `window.notReloaded === true`) {
		t.Error("Alice's page reloaded")
	}
	if n := dialogs.Load(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened", n)
	}

	screenshot(t, aliceTab, "alice-wide.png")
	do(t, bobTab, "phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulatePortrait, chromedp.EmulateMobile))
	screenshot(t, bobTab, "bob-phone.png")
	do(t, bobTab, "open the private tab and the peers", chromedp.Click(`#tabs button[data-tab="private"]`), chromedp.Click("#toggle-side"))
	waitJS(t, bobTab, "the peers panel", `getComputedStyle(document.getElementById('side')).display !== 'none'`)
	screenshot(t, bobTab, "bob-phone-private.png")
	if w := eval[int](t, bobTab, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("at phone width the page is %d px wide", w)
	}

	// The page outlives a restart of its node: it reconnects by itself
	// and reads from the log what was said meanwhile.
	dir := alice.DataDir
	alice.Quit()
	waitShown(t, aliceTab, "#status", "reconnecting")
	bob.Send("while Alice was away")
	alice = restart(t, dir, "--http", strings.TrimPrefix(ap.base, "http://"))
	waitShown(t, aliceTab, "#status", "live")
	waitShown(t, aliceTab, "#lines", "while Alice was away")
	if !eval[bool](t, aliceTab, `window.notReloaded === true`) {
		t.Error("Alice's page reloaded")
	}

	// A page opened later shows the private messages said before it was
	// opened, read from the log, the sent ones with their recipient.
	bobLater := tab(t, aliceTab, &dialogs)
	do(t, bobLater, "open Bob's page again", chromedp.Navigate(bp.url))
	waitShown(t, bobLater, "#privlines", "psst from the page")
	aliceLater := tab(t, aliceTab, &dialogs)
	do(t, aliceLater, "open Alice's page again", chromedp.Navigate(ap.url))
	waitShown(t, aliceLater, "#privlines", "[to Bob]")
	alice.Quit()
	bob.Quit()
}
