package wire

import (
	"fmt"
	"strings"
)

// Reconciliation frames (protocol version 2). SYNCQ asks for the
// fingerprints of the children of origin ID prefixes; SYNCFP answers one
// SYNCQ. A version 1 peer ignores both, as unknown frame types, and is
// never sent them.
const (
	FrameSyncQuery  = "SYNCQ"
	FrameSyncPrints = "SYNCFP"
)

// SyncQueryMsg asks for the fingerprints of the children of each prefix.
type SyncQueryMsg struct {
	Round    uint64   `json:"round"`
	Prefixes []string `json:"prefixes"`
}

// Validate checks the bounds of a SYNCQ.
func (q SyncQueryMsg) Validate() error {
	if len(q.Prefixes) == 0 || len(q.Prefixes) > MaxQueryPrefixes {
		return fmt.Errorf("SYNCQ asks for %d prefixes, want 1 to %d", len(q.Prefixes), MaxQueryPrefixes)
	}
	for _, p := range q.Prefixes {
		if err := CheckPrefix(p); err != nil {
			return fmt.Errorf("SYNCQ: %w", err)
		}
		if len(p) >= MaxPrefixDepth {
			return fmt.Errorf("SYNCQ: prefix %q has no children to compare", p)
		}
	}
	return nil
}

// SyncPrintsMsg answers a SYNCQ of the same round.
type SyncPrintsMsg struct {
	Round uint64      `json:"round"`
	Nodes []PrintNode `json:"nodes"`
}

// PrintNode holds, for the 16 children of Prefix (Prefix plus one hex
// nibble), how many origins the sender holds under each and the sum
// modulo 2^128 of their digests, 16 bytes little-endian per child.
type PrintNode struct {
	Prefix string   `json:"p"`
	Counts []uint32 `json:"n"`
	Sums   []byte   `json:"s"`
}

// Validate checks the bounds of a SYNCFP.
func (m SyncPrintsMsg) Validate() error {
	if len(m.Nodes) > MaxQueryPrefixes {
		return fmt.Errorf("SYNCFP holds %d prefixes, the limit is %d", len(m.Nodes), MaxQueryPrefixes)
	}
	for _, n := range m.Nodes {
		if err := CheckPrefix(n.Prefix); err != nil {
			return fmt.Errorf("SYNCFP: %w", err)
		}
		if len(n.Counts) != 16 || len(n.Sums) != 16*16 {
			return fmt.Errorf("SYNCFP: prefix %q has %d counts and %d sum bytes, want 16 and 256", n.Prefix, len(n.Counts), len(n.Sums))
		}
	}
	return nil
}

const HexDigits = "0123456789abcdef"

// CheckPrefix accepts up to MaxPrefixDepth lowercase hex nibbles.
func CheckPrefix(p string) error {
	if len(p) > MaxPrefixDepth {
		return fmt.Errorf("prefix %.20q is longer than %d nibbles", p, MaxPrefixDepth)
	}
	if strings.Trim(p, HexDigits) != "" {
		return fmt.Errorf("prefix %q is not lowercase hex", p)
	}
	return nil
}

// Bounds of reconciliation frames.
const (
	// MaxPrefixDepth bounds prefixes to 16 hex nibbles (64 bits of the
	// key): a prefix that long is a leaf whatever it holds, since nobody
	// grinds 64-bit key prefixes.
	MaxPrefixDepth = 16
	// MaxQueryPrefixes bounds one SYNCQ, so its SYNCFP (about 450 bytes
	// per prefix) stays far under the frame limit.
	MaxQueryPrefixes = 64
)
