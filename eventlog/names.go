package eventlog

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Names are labels that peers choose, so a peer can pick one that looks
// like another's: "Аlice" with a Cyrillic А, "Alice" in fullwidth letters,
// "AIice" with a capital I. The rules here make such look-alikes visible
// rather than impossible: a name must not hide characters (CheckName), and
// two names with the same Skeleton are shown with their short IDs.
//
// Unicode's answer is the confusables table of UTS #39, about 6,000
// mappings. golang.org/x/text has the normalization forms it builds on but
// not that table, and no maintained Go module ships it. Skeleton therefore
// folds in three steps that cover the look-alikes that matter for names
// typed on ordinary keyboards: NFKC (fullwidth, superscript, ligatures and
// other compatibility forms become their plain letters), a compact map of
// the Cyrillic and Greek letters that look like Latin ones plus the
// digit/letter pairs (0/O, 1/l/I), and case folding. A look-alike outside
// these scripts can still pass, but it cannot hide: every name is visible
// text, without zero-width, bidi-control or C1 characters.

// confusables maps a character to the Latin letter it looks like. It is
// applied after NFKC and before case folding, so that both cases of a
// letter are listed where their shapes differ (Cyrillic І looks like a
// capital I, which itself looks like a small l).
var confusables = map[rune]rune{
	// Latin and digits that look like each other.
	'0': 'o', 'O': 'o', '1': 'l', 'I': 'l', '|': 'l', 'ı': 'i', 'ȷ': 'j',
	// Cyrillic.
	'А': 'a', 'В': 'b', 'С': 'c', 'Е': 'e', 'Н': 'h', 'І': 'l', 'Ј': 'j', 'К': 'k',
	'М': 'm', 'О': 'o', 'Р': 'p', 'Ѕ': 's', 'Т': 't', 'Х': 'x', 'Ү': 'y', 'Ԛ': 'q',
	'Ԝ': 'w', 'Ӏ': 'l', 'Ꙇ': 'l',
	'а': 'a', 'с': 'c', 'ԁ': 'd', 'е': 'e', 'һ': 'h', 'і': 'i', 'ј': 'j', 'о': 'o',
	'р': 'p', 'ԛ': 'q', 'ѕ': 's', 'у': 'y', 'ԝ': 'w', 'х': 'x', 'ү': 'y', 'ӏ': 'l',
	'ь': 'b', 'ɡ': 'g',
	// Greek.
	'Α': 'a', 'Β': 'b', 'Ε': 'e', 'Ζ': 'z', 'Η': 'h', 'Ι': 'l', 'Κ': 'k', 'Μ': 'm',
	'Ν': 'n', 'Ο': 'o', 'Ρ': 'p', 'Τ': 't', 'Υ': 'y', 'Χ': 'x',
	'α': 'a', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ο': 'o', 'ρ': 'p', 'υ': 'u', 'χ': 'x',
	'ϲ': 'c', 'ϳ': 'j', 'т': 't', 'к': 'k', 'м': 'm', 'н': 'h', 'в': 'b',
}

// Skeleton is the form in which two names that look alike are equal:
// NFKC, then the confusables map, then case folding. "Alice", "alice",
// "Аlice" (Cyrillic А), "ＡＬＩＣＥ" and "AIice" share one skeleton. It
// is meant for comparing names, never for showing them.
func Skeleton(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	for _, r := range norm.NFKC.String(name) {
		if isHidden(r) {
			continue
		}
		b.WriteRune(lookAlike(r))
	}
	s := b.String()
	// "rn" next to each other reads as "m" in most fonts.
	return strings.ReplaceAll(s, "rn", "m")
}

// lookAlike maps r to the letter it looks like and to lower case; a capital
// whose small letter is a look-alike (Cyrillic Т, т) meets it either way.
func lookAlike(r rune) rune {
	if c, ok := confusables[r]; ok {
		return c
	}
	r = unicode.ToLower(r)
	if c, ok := confusables[r]; ok {
		return c
	}
	return r
}

// Confusable reports whether two names look alike: the same skeleton.
func Confusable(a, b string) bool {
	return a == b || Skeleton(a) == Skeleton(b)
}

// isHidden reports whether r changes how text reads without being seen:
// C1 controls, bidirectional marks, embeddings, overrides and isolates,
// and the zero-width and other invisible format characters (Unicode
// category Cf).
func isHidden(r rune) bool {
	if r < 0xa0 {
		// No character of Cf is below U+00AD: most text, checked once
		// per line at every node, never reaches the table search.
		return r >= 0x80
	}
	return unicode.Is(unicode.Cf, r)
}

// InvisibleInText reports whether r may not appear in chat text, nor
// reach a terminal as is. Text is
// allowed the two joiners that scripts and emoji need (U+200C, U+200D) and
// the tag characters of flag emoji; every other hidden character is
// refused.
func InvisibleInText(r rune) bool {
	switch {
	case r == 0x200c, r == 0x200d, r >= 0xe0020 && r <= 0xe007f:
		return false
	}
	return isHidden(r)
}
