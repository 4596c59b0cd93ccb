package eventlog

import (
	"testing"
	"unicode"
)

func TestLookAlikeNamesShareASkeleton(t *testing.T) {
	for _, c := range []struct{ a, b string }{
		{"Alice", "alice"},
		{"Alice", "\u0410lice"},                     // Cyrillic А
		{"Alice", "\uff21\uff4c\uff49\uff43\uff45"}, // fullwidth
		{"Alice", "AIice"},                          // capital I for l
		{"Alice", "A1ice"},
		{"Bob", "B\u03bfb"}, // Greek omicron
		{"Bob", "B0b"},
		{"Carol", "\u0421arol"}, // Cyrillic С
		{"mary", "rnary"},
		{"Eve", "\u0415ve"}, // Cyrillic Е
		{"Eve", "\u0395ve"}, // Greek Epsilon
	} {
		if !Confusable(c.a, c.b) {
			t.Errorf("Confusable(%q, %q) = false; skeletons %q and %q", c.a, c.b, Skeleton(c.a), Skeleton(c.b))
		}
	}
}

func TestDifferentNamesHaveDifferentSkeletons(t *testing.T) {
	for _, c := range []struct{ a, b string }{
		{"Alice", "Alicia"},
		{"Bob", "Rob"},
		{"Ann Lee", "AnnLee"},
		{"Zoë", "Zoe"},
		{"李雷", "韩梅梅"},
	} {
		if Confusable(c.a, c.b) {
			t.Errorf("Confusable(%q, %q) = true; skeleton %q", c.a, c.b, Skeleton(c.a))
		}
	}
}

func TestNamesRefuseInvisibleCharacters(t *testing.T) {
	for _, name := range []string{
		"Alice\u200b", // zero-width space
		"Al\u200dice", // zero-width joiner
		"\u202eecilA", // right-to-left override
		"Alice\u2066", // left-to-right isolate
		"Alice\u200f", // right-to-left mark
		"Ali\u0085ce", // C1 next line
		"Ali\u00adce", // soft hyphen
		"\ufeffAlice", // byte order mark
	} {
		if err := CheckName(name); err == nil {
			t.Errorf("CheckName(%q) accepted it", name)
		}
	}
	for _, name := range []string{"Alice", "Ann Lee", "Zoë", "李雷", "Алиса"} {
		if err := CheckName(name); err != nil {
			t.Errorf("CheckName(%q): %v", name, err)
		}
	}
}

func TestTextRefusesBidiControlsAndZeroWidthSpacesButKeepsEmoji(t *testing.T) {
	for _, text := range []string{
		"hello \u202eevil",
		"pay\u200b here",
		"a\u0085b",
		"\u2067isolated\u2069",
		"x\u2060y",
	} {
		if err := CheckText(text); err == nil {
			t.Errorf("CheckText(%q) accepted it", text)
		}
	}
	for _, text := range []string{
		"family \U0001F468\u200d\U0001F469\u200d\U0001F467",                      // joined emoji
		"\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F", // flag of Scotland
		"می\u200cخواهم", // Persian with a zero-width non-joiner
		"tab\there",
	} {
		if err := CheckText(text); err != nil {
			t.Errorf("CheckText(%q): %v", text, err)
		}
	}
}

// BenchmarkSkeleton is the cost of comparing two names as look-alikes,
// against a plain comparison of the bytes as the baseline.
func BenchmarkSkeleton(b *testing.B) {
	names := []string{"Alice", "\u0410lice", "Bob the Builder", "\uff21\uff4c\uff49\uff43\uff45", "李雷"}
	b.Run("bytes", func(b *testing.B) {
		same := 0
		for i := range b.N {
			if names[i%len(names)] == names[(i+1)%len(names)] {
				same++
			}
		}
		_ = same
	})
	b.Run("skeleton", func(b *testing.B) {
		same := 0
		for i := range b.N {
			if Confusable(names[i%len(names)], names[(i+1)%len(names)]) {
				same++
			}
		}
		_ = same
	})
}

// TestHiddenIsExactlyC1AndTheFormatCharacters holds isHidden, which skips
// the table search below U+00A0, to its definition over every code point.
func TestHiddenIsExactlyC1AndTheFormatCharacters(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		want := (r >= 0x80 && r < 0xa0) || unicode.Is(unicode.Cf, r)
		if got := isHidden(r); got != want {
			t.Fatalf("isHidden(U+%04X) = %v, want %v", r, got, want)
		}
	}
}
