package eventlog

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/p2pchat/p2pchat/store"
	bolt "go.etcd.io/bbolt"
)

// Errors callers branch on.
var (
	ErrClosed   = errors.New("event log is closed")
	ErrReadOnly = errors.New("event log is open read-only")
)

// DefaultMaxBatch caps how many events one commit carries, so a flood of
// producers cannot make a single transaction (and its latency) unbounded.
const DefaultMaxBatch = 4096

// Options tune Open.
type Options struct {
	// ReadOnly opens the log without its writer; Append fails.
	ReadOnly bool
	// MaxBatch caps the events in one commit (DefaultMaxBatch if 0).
	MaxBatch int
	// Now is the clock for event times (time.Now if nil); tests set it.
	Now func() time.Time
	// MaxAhead bounds how far past an origin's watermark a received
	// message may be (0: no bound). Holes cost a little to track and to
	// ask for in every catch-up; the bound keeps a peer from inventing
	// millions of them with one message numbered far in the future.
	MaxAhead uint64
	// MaxPerOrigin bounds how many messages of one other node the log
	// keeps (0: no bound). Origin seqs count an author's messages from 1,
	// so refusing those numbered past the bound caps what any one author,
	// or anyone replaying its messages, can make this node store.
	MaxPerOrigin uint64
	// OnCommit, if set, is called by the writer after each commit with
	// the number of events handed in for it and how long the transaction
	// took, fsync included; it must return quickly. Metrics hang here.
	OnCommit func(events int, took time.Duration)
}

// Log is the node's event log and the projection folded from it.
//
// Appends go through one writer goroutine that commits whatever is waiting
// as one bbolt transaction, one fsync, and then acknowledges every producer
// (group commit). A lone producer is committed at once: the writer never
// waits for company. Reads run in their own read transactions and never
// block the writer for long.
type Log struct {
	st        *store.Store
	key       ed25519.PrivateKey
	self      NodeID
	maxBatch  int
	maxAhead  uint64
	maxOrigin uint64
	now       func() time.Time
	readOnly  bool
	onCommit  func(events int, took time.Duration)

	reqs      chan *request
	closing   chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// Result says what Append did with one body.
type Result struct {
	// Seq is the local sequence number it got (0 for a duplicate).
	Seq uint64
	// Duplicate is true for a Chat or Nick whose (origin, origin seq)
	// the log already holds; nothing was written for it.
	Duplicate bool
	// TooFarAhead is true for another node's Chat or Nick whose origin
	// seq is more than Options.MaxAhead past what the log holds of that
	// origin, or past Options.MaxPerOrigin; nothing was written for it.
	TooFarAhead bool
	// Body is the body as stored: for the node's own Chat and Nick, with
	// origin, origin seq, time and signature filled in.
	Body Body
}

type request struct {
	bodies  []Body
	results []Result
	err     error
	done    chan struct{}
}

// Open opens the log kept in st. Unless opts.ReadOnly, it starts the
// writer goroutine; Close stops it.
func Open(st *store.Store, opts Options) (*Log, error) {
	key, err := st.Identity()
	if err != nil {
		return nil, err
	}
	self, _ := IDFromKey(key.Public().(ed25519.PublicKey))
	l := &Log{
		st:        st,
		key:       key,
		self:      self,
		maxBatch:  opts.MaxBatch,
		maxAhead:  opts.MaxAhead,
		maxOrigin: opts.MaxPerOrigin,
		now:       opts.Now,
		onCommit:  opts.OnCommit,
		reqs:      make(chan *request),
		closing:   make(chan struct{}),
	}
	if l.maxBatch <= 0 {
		l.maxBatch = DefaultMaxBatch
	}
	if l.now == nil {
		l.now = time.Now
	}
	if opts.ReadOnly {
		l.readOnly = true
		close(l.closing)
		return l, nil
	}
	l.wg.Add(1)
	go l.writer()
	return l, nil
}

// Self is this node's ID.
func (l *Log) Self() NodeID { return l.self }

// Key is this node's identity key.
func (l *Log) Key() ed25519.PrivateKey { return l.key }

// Close stops the writer after it has committed every append already
// handed to it. Appends after Close fail with ErrClosed. The store stays
// open; its owner closes it.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		if !l.readOnly {
			close(l.closing)
		}
	})
	l.wg.Wait()
	return nil
}

// Append stores bodies durably, in order, and folds each into the
// projection in the same transaction. It returns once they are on disk.
//
// A Chat or Nick with OriginSeq 0 is this node's own: the log gives it the
// next origin seq, the time and the signature. Any other Chat or Nick is
// stored once per (origin, origin seq); a repeat reports Duplicate.
// If ctx ends first, Append returns ctx's error and the bodies may or may
// not have been stored. A body of a type this package does not define is
// refused, and nothing of that call is stored.
func (l *Log) Append(ctx context.Context, bodies ...Body) ([]Result, error) {
	if len(bodies) == 0 {
		return nil, nil
	}
	// Refuse what cannot be stored here: in the writer it would fail the
	// whole group commit, and with it other producers' appends.
	for _, b := range bodies {
		if !encodable(b) {
			return nil, fmt.Errorf("append: cannot store event body %T", b)
		}
	}
	r := &request{bodies: bodies, done: make(chan struct{})}
	select {
	case l.reqs <- r:
	case <-l.closing:
		if l.readOnly {
			return nil, ErrReadOnly
		}
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-r.done:
		return r.results, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *Log) writer() {
	defer l.wg.Done()
	for {
		var first *request
		select {
		case first = <-l.reqs:
		case <-l.closing:
			return
		}
		batch, n := []*request{first}, len(first.bodies)
	drain:
		for n < l.maxBatch {
			select {
			case r := <-l.reqs:
				batch = append(batch, r)
				n += len(r.bodies)
			default:
				break drain
			}
		}
		start := time.Now()
		err := l.commit(batch)
		if l.onCommit != nil {
			l.onCommit(n, time.Since(start))
		}
		for _, r := range batch {
			if err != nil {
				r.results, r.err = nil, err
			}
			close(r.done)
		}
	}
}

// commit appends every request of the batch in one transaction.
func (l *Log) commit(batch []*request) error {
	return l.st.Update(func(tx *bolt.Tx) error {
		events := tx.Bucket(store.BucketEvents)
		events.FillPercent = 1 // append-only: fill pages densely
		chats := tx.Bucket(store.BucketChats)
		p := txProjection{tx: tx}
		seq := lastSeq(events)
		now := l.now().Round(0).UTC()
		for _, r := range batch {
			r.results = make([]Result, len(r.bodies))
			for i, body := range r.bodies {
				body, err := l.prepare(p, body, now)
				if err != nil {
					return err
				}
				if s, ok := body.(Signed); ok {
					origin, oseq := s.OriginKey()
					dup, err := p.hasOrigin(origin, oseq)
					if err != nil {
						return err
					}
					if dup {
						r.results[i] = Result{Duplicate: true, Body: body}
						continue
					}
					if l.maxOrigin > 0 && origin != l.self && oseq > l.maxOrigin {
						r.results[i] = Result{TooFarAhead: true, Body: body}
						continue
					}
					if l.maxAhead > 0 && origin != l.self {
						mark, err := p.watermark(origin)
						if err != nil {
							return err
						}
						if oseq > mark+l.maxAhead {
							r.results[i] = Result{TooFarAhead: true, Body: body}
							continue
						}
					}
				}
				seq++
				e := Event{Seq: seq, Time: now, Body: body}
				data, err := Encode(e)
				if err != nil {
					return err
				}
				if err := events.Put(seqKey(seq), data); err != nil {
					return err
				}
				if body.Type() == TypeChat {
					if err := markChat(chats, seq); err != nil {
						return err
					}
				}
				// Fold the event as stored, just as Verify reads it
				// back: the encoding normalises times (to UTC, without a
				// monotonic reading), which a body handed in may not be.
				stored, err := Decode(seq, data)
				if err != nil {
					return err
				}
				if err := fold(p, l.self, stored); err != nil {
					return err
				}
				r.results[i] = Result{Seq: seq, Body: body}
			}
		}
		return nil
	})
}

// prepare numbers, stamps and signs the node's own Chat and Nick: those
// handed in with OriginSeq 0. Their origin seq follows the node's own
// watermark, which its own messages always keep contiguous.
func (l *Log) prepare(p projection, body Body, now time.Time) (Body, error) {
	next := func() (uint64, error) {
		seq, err := p.watermark(l.self)
		return seq + 1, err
	}
	var err error
	switch b := body.(type) {
	case Chat:
		if b.OriginSeq == 0 {
			if b.OriginSeq, err = next(); err != nil {
				return nil, err
			}
			b.OriginTime = now
			b.Sign(l.key)
		}
		return b, nil
	case Nick:
		if b.OriginSeq == 0 {
			if b.OriginSeq, err = next(); err != nil {
				return nil, err
			}
			b.OriginTime = now
			b.Sign(l.key)
		}
		return b, nil
	}
	return body, nil
}

func lastSeq(events *bolt.Bucket) uint64 {
	k, _ := events.Cursor().Last()
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

// txProjection is the projection as stored, inside one transaction.
type txProjection struct{ tx *bolt.Tx }

func (p txProjection) peer(id NodeID) (Peer, bool, error) {
	b := p.tx.Bucket(store.BucketPeers).Get(id[:])
	if b == nil {
		return Peer{}, false, nil
	}
	r, err := decodePeer(b)
	return r, err == nil, err
}

func (p txProjection) putPeer(r Peer) error {
	b, err := encodePeer(r)
	if err != nil {
		return err
	}
	return p.tx.Bucket(store.BucketPeers).Put(r.ID[:], b)
}

func (p txProjection) watermark(origin NodeID) (uint64, error) {
	b := p.tx.Bucket(store.BucketWatermarks).Get(origin[:])
	if b == nil {
		return 0, nil
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: watermark of %s has %d bytes", store.ErrCorrupt, origin.Short(), len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

func (p txProjection) putWatermark(origin NodeID, seq uint64) error {
	return p.tx.Bucket(store.BucketWatermarks).Put(origin[:], seqKey(seq))
}

func (p txProjection) hasOrigin(origin NodeID, seq uint64) (bool, error) {
	b := p.tx.Bucket(store.BucketOrigins).Bucket(origin[:])
	return b != nil && b.Get(seqKey(seq)) != nil, nil
}

func (p txProjection) putOrigin(origin NodeID, originSeq, seq uint64) error {
	b, err := p.tx.Bucket(store.BucketOrigins).CreateBucketIfNotExists(origin[:])
	if err != nil {
		return err
	}
	b.FillPercent = 1
	return b.Put(seqKey(originSeq), binary.AppendUvarint(nil, seq))
}

// LastSeq is the sequence number of the newest event, 0 for an empty log.
func (l *Log) LastSeq() (uint64, error) {
	var seq uint64
	err := l.st.View(func(tx *bolt.Tx) error {
		seq = lastSeq(tx.Bucket(store.BucketEvents))
		return nil
	})
	return seq, err
}

// scanChunk bounds how many events one read transaction decodes, so a long
// scan never pins old pages (or blocks a remap) for long.
const scanChunk = 1024

// Scan calls fn for every event with Seq >= from, oldest first, until fn
// returns an error or ctx ends.
func (l *Log) Scan(ctx context.Context, from uint64, fn func(Event) error) error {
	for {
		var chunk []Event
		err := l.st.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(store.BucketEvents).Cursor()
			for k, v := c.Seek(seqKey(from)); k != nil && len(chunk) < scanChunk; k, v = c.Next() {
				e, err := Decode(binary.BigEndian.Uint64(k), v)
				if err != nil {
					return err
				}
				chunk = append(chunk, e)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, e := range chunk {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(chunk) < scanChunk {
			return nil
		}
		from = chunk[len(chunk)-1].Seq + 1
	}
}

// LastChats returns the newest n CHAT events, oldest first. It walks the
// chat index backwards, so its cost depends on n, not on the log's size.
func (l *Log) LastChats(n int) ([]Event, error) {
	if n <= 0 {
		return nil, nil
	}
	var out []Event
	err := l.st.View(func(tx *bolt.Tx) error {
		events := tx.Bucket(store.BucketEvents)
		for _, seq := range lastChatSeqs(tx.Bucket(store.BucketChats), n) {
			e, err := Decode(seq, events.Get(seqKey(seq)))
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}

// Peers returns the peer table.
func (l *Log) Peers() ([]Peer, error) {
	var out []Peer
	err := l.st.View(func(tx *bolt.Tx) error {
		return tx.Bucket(store.BucketPeers).ForEach(func(_, v []byte) error {
			p, err := decodePeer(v)
			out = append(out, p)
			return err
		})
	})
	return out, err
}

// Peer returns one row of the peer table.
func (l *Log) Peer(id NodeID) (Peer, bool, error) {
	var (
		p  Peer
		ok bool
	)
	err := l.st.View(func(tx *bolt.Tx) error {
		var err error
		p, ok, err = txProjection{tx: tx}.peer(id)
		return err
	})
	return p, ok, err
}

// Watermarks returns, per origin, the highest origin seq up to which the
// log holds every message.
func (l *Log) Watermarks() (map[NodeID]uint64, error) {
	out := map[NodeID]uint64{}
	err := l.st.View(func(tx *bolt.Tx) error {
		return tx.Bucket(store.BucketWatermarks).ForEach(func(k, v []byte) error {
			var id NodeID
			if len(k) != len(id) || len(v) != 8 {
				return fmt.Errorf("%w: bad watermark row", store.ErrCorrupt)
			}
			copy(id[:], k)
			out[id] = binary.BigEndian.Uint64(v)
			return nil
		})
	})
	return out, err
}

// ByOrigin returns up to limit stored Chat and Nick events of origin with
// origin seq > after, in origin-seq order.
func (l *Log) ByOrigin(origin NodeID, after uint64, limit int) ([]Event, error) {
	var out []Event
	if after == math.MaxUint64 {
		return nil, nil // nothing follows; after+1 would wrap to 0
	}
	err := l.st.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(store.BucketOrigins).Bucket(origin[:])
		if b == nil {
			return nil
		}
		events := tx.Bucket(store.BucketEvents)
		c := b.Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			seq, n := binary.Uvarint(v)
			if n <= 0 {
				return fmt.Errorf("%w: bad origin index row", store.ErrCorrupt)
			}
			e, err := Decode(seq, events.Get(seqKey(seq)))
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}
