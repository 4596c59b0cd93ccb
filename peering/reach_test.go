package peering

import (
	"fmt"
	"testing"
	"time"
)

func TestDialBackRunsOncePerAddressAndHidesItUntilItWorks(t *testing.T) {
	var r reachability
	now := time.Now()
	const addr = "198.51.100.4:7000"
	if r.hidden(addr) {
		t.Fatal("an address never dialed back is hidden")
	}
	if !r.startDialBack(addr, now) {
		t.Fatal("first dial-back refused")
	}
	if !r.hidden(addr) {
		t.Error("an address is offered while its dial-back is under way")
	}
	if r.startDialBack(addr, now) {
		t.Error("a second dial-back started while one is under way")
	}
	r.finish(addr, false, now)
	if !r.hidden(addr) || r.knownReachable(addr) {
		t.Error("an address whose dial-back failed is offered")
	}
	if r.startDialBack(addr, now.Add(reachTTL/2)) {
		t.Error("dialed back again before the result expired")
	}
	if !r.startDialBack(addr, now.Add(reachTTL)) {
		t.Error("not dialed back again after the result expired")
	}
	r.finish(addr, true, time.Now())
	if r.hidden(addr) || !r.knownReachable(addr) {
		t.Error("an address whose dial-back worked is hidden")
	}
	if got := r.visible([]string{addr, "192.0.2.1:7000"}); len(got) != 2 {
		t.Errorf("visible = %v, want both addresses", got)
	}
}

func TestDialBackResultsAreBounded(t *testing.T) {
	var r reachability
	now := time.Now()
	for i := range maxReachEntries {
		if !r.startDialBack(fmt.Sprintf("192.0.2.1:%d", i+1), now) {
			t.Fatalf("dial-back %d refused below the bound", i)
		}
	}
	if r.startDialBack("192.0.2.2:1", now) {
		t.Error("a dial-back started past the bound while every slot is in use")
	}
	for i := range maxReachEntries {
		r.finish(fmt.Sprintf("192.0.2.1:%d", i+1), false, now)
	}
	if !r.startDialBack("192.0.2.2:1", now.Add(reachTTL)) {
		t.Error("expired results were not evicted to make room")
	}
	if len(r.results) > maxReachEntries {
		t.Errorf("%d results kept, bound %d", len(r.results), maxReachEntries)
	}
}
