package repl

import (
	"bufio"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDisplayFormatsLines(t *testing.T) {
	at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	// A day in the past: shown with its date.
	hms := at.Local().Format(time.DateTime)
	tests := []struct {
		name string
		show func(d *Display)
		want []string
	}{
		{"chat", func(d *Display) { d.ShowChat(at, "Bob", "hi there") }, []string{hms + " <Bob> hi there"}},
		{"private", func(d *Display) { d.ShowPrivate(at, "Bob", "psst") }, []string{hms + " [private] <Bob> psst"}},
		{"private sent", func(d *Display) { d.ShowPrivateTo(at, "Carol", "Bob", "psst") }, []string{hms + " [private to Carol] <Bob> psst"}},
		{"system", func(d *Display) { d.ShowSystem("Bob joined") }, []string{"*** Bob joined"}},
		{"printf", func(d *Display) { d.Printf("%d peers", 3) }, []string{"3 peers"}},
		{"printf trailing newline", func(d *Display) { d.Printf("done\n") }, []string{"done"}},
		{"printf lines", func(d *Display) { d.Printf("a\nb") }, []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out lineRecorder
			tt.show(newDisplay(&out))
			out.check(t)
			if got := out.Lines(); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("lines = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDisplayNeverWritesControlCharacters(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"plain text", "plain text"},
		{"clear\x1b[2Jscreen", "clear^[[2Jscreen"},
		{"bell\a", "bell^G"},
		{"cr\roverwrite", "cr^Moverwrite"},
		{"two\nlines", "two^Jlines"},
		{"tab\there", "tab here"},
		{"del\x7f", "del^?"},
		{"c1 \u009b31m", "c1 \ufffd31m"},
		{"bidi \u202eevil", "bidi \ufffdevil"},
		{"bad \xff utf8", "bad \ufffd utf8"},
		{"wide 日本語 ok", "wide 日本語 ok"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var out lineRecorder
			d := newDisplay(&out)
			d.ShowSystem(tt.in)
			d.ShowChat(time.Now(), tt.in, tt.in)
			d.Printf("%s", tt.in)
			out.check(t)
			lines := out.Lines()
			if lines[0] != "*** "+tt.want {
				t.Errorf("system line = %q, want %q", lines[0], "*** "+tt.want)
			}
			if !strings.HasSuffix(lines[1], "<"+tt.want+"> "+tt.want) {
				t.Errorf("chat line = %q, want name and text %q", lines[1], tt.want)
			}
			for _, l := range lines {
				if strings.ContainsFunc(l, needsEscape) {
					t.Errorf("line %q has a control character", l)
				}
			}
		})
	}
}

func TestDisplayWritesWholeLinesFromManyGoroutines(t *testing.T) {
	var out lineRecorder
	d := newDisplay(&out)
	const writers, each = 16, 100
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				d.ShowChat(time.Now(), fmt.Sprintf("w%d", w), fmt.Sprintf("line %d", i))
			}
		}()
	}
	wg.Wait()
	out.check(t)
	if n := len(out.Lines()); n != writers*each {
		t.Fatalf("got %d lines, want %d", n, writers*each)
	}
}

func TestDisplayFlushesBufferedOutput(t *testing.T) {
	var out lineRecorder
	bw := bufio.NewWriterSize(&out, 4096)
	d := newDisplay(bw)
	d.ShowSystem("now")
	if got := out.Lines(); len(got) != 1 || got[0] != "*** now" {
		t.Fatalf("after one line the writer holds %q, want it flushed", got)
	}
}

func TestStampShowsTheDateOnlyWhenNotToday(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.Local)
	for _, tt := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 3, 10, 0, 0, 1, 0, time.Local), "00:00:01"},
		{time.Date(2026, 3, 10, 23, 59, 59, 0, time.Local), "23:59:59"},
		{time.Date(2026, 3, 9, 23, 59, 59, 0, time.Local), "2026-03-09 23:59:59"},
		{time.Date(2025, 3, 10, 12, 0, 0, 0, time.Local), "2025-03-10 12:00:00"},
	} {
		if got := Stamp(tt.at, now); got != tt.want {
			t.Errorf("Stamp(%v) = %q, want %q", tt.at, got, tt.want)
		}
	}
}

func TestSanitizeEscapesZeroWidthSpacesButKeepsJoinedEmoji(t *testing.T) {
	if got := Sanitize("a\u200bb"); got != "a\ufffdb" {
		t.Errorf("Sanitize(zero-width space) = %q", got)
	}
	emoji := "\U0001F468\u200d\U0001F469"
	if got := Sanitize(emoji); got != emoji {
		t.Errorf("Sanitize(%q) = %q, want it unchanged", emoji, got)
	}
}
