package web

import (
	"sync"
	"time"
)

// Event is one thing the node showed, as the page and the event stream
// receive it.
type Event struct {
	// Kind is "chat", "private" or "system".
	Kind string    `json:"kind"`
	Time time.Time `json:"time"`
	// Name is who wrote a chat line or private message; empty for system
	// lines.
	Name string `json:"name,omitempty"`
	// To is the recipient of a private message this node sent.
	To   string `json:"to,omitempty"`
	Text string `json:"text"`
}

// subscriberQueue bounds the events waiting for one page. A page that
// falls this far behind is cut off rather than waited for; its browser
// reconnects and reloads the history.
const subscriberQueue = 256

// Hub hands what the node shows to every open page. It satisfies the
// node's display interface, so it sits beside the terminal's display, and
// never blocks the node: a subscriber that cannot keep up is dropped.
type Hub struct {
	now  func() time.Time
	mu   sync.Mutex
	subs map[chan Event]struct{}
}

// NewHub returns a hub with no subscribers.
func NewHub() *Hub { return &Hub{now: time.Now, subs: map[chan Event]struct{}{}} }

// ShowChat hands a public chat line to every page.
func (h *Hub) ShowChat(t time.Time, name, text string) {
	h.publish(Event{Kind: "chat", Time: t, Name: name, Text: text})
}

// ShowPrivate hands a private message to every page.
func (h *Hub) ShowPrivate(t time.Time, name, text string) {
	h.publish(Event{Kind: "private", Time: t, Name: name, Text: text})
}

// ShowPrivateTo hands a private message this node sent to every page.
func (h *Hub) ShowPrivateTo(t time.Time, to, name, text string) {
	h.publish(Event{Kind: "private", Time: t, Name: name, To: to, Text: text})
}

// ShowSystem hands a system line to every page.
func (h *Hub) ShowSystem(text string) {
	h.publish(Event{Kind: "system", Time: h.now(), Text: text})
}

func (h *Hub) publish(e Event) {
	e.Time = e.Time.UTC()
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- e:
		default:
			delete(h.subs, ch)
			close(ch)
		}
	}
}

// Subscribe returns a channel of the events from now on, and a function
// that ends the subscription. The channel is closed when the subscription
// ends, by cancel or because the subscriber fell behind.
func (h *Hub) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, subscriberQueue)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
	}
}
