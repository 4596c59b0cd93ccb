package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestJSONOutputEscapesInvisibleCharactersAndKeepsTheText(t *testing.T) {
	for _, text := range []string{
		"plain",
		"bidi \u202eevil",
		"c1 \u009b31m",
		"zero\u200bwidth",
		"tag \U000E0001 outside the basic plane",
		"emoji \U0001F468\u200d\U0001F469 stays",
	} {
		b, err := json.Marshal(map[string]string{"text": text})
		if err != nil {
			t.Fatal(err)
		}
		out := escapeJSON(string(b))
		if strings.ContainsAny(out, "\u202e\u009b\u200b\U000E0001") {
			t.Errorf("escapeJSON(%q) = %q: a raw invisible character is left", b, out)
		}
		var back map[string]string
		if err := json.Unmarshal([]byte(out), &back); err != nil || back["text"] != text {
			t.Errorf("escapeJSON(%q) = %q, which reads back as %q (%v), want %q", b, out, back["text"], err, text)
		}
	}
}
