package eventlog

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pchat/p2pchat/store"
	bolt "go.etcd.io/bbolt"
)

// Errors callers branch on.
var (
	ErrClosed   = errors.New("event log is closed")
	ErrReadOnly = errors.New("event log is open read-only")
	// ErrRefused means a body cannot be stored as it is (a type this
	// package does not define, a time outside what the log can hold);
	// nothing of that Append was stored.
	ErrRefused = errors.New("event refused")
)

// DefaultMaxBatch caps how many events one commit carries, so a flood of
// producers cannot make a single transaction (and its latency) unbounded.
const DefaultMaxBatch = 4096

// DefaultMaxPeers bounds the peer table when Options.MaxPeers is 0.
const DefaultMaxPeers = 10000

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
	// MaxPeers bounds the peer table's growth from hearsay: once the
	// table holds this many rows, a PEERS entry about a node without a
	// row evicts the least recently heard row that hearsay alone made
	// (see Peers.Evicted), and is left out of the stored event only when
	// no such row is left (DefaultMaxPeers if 0); a DialFailed about a
	// node without a row is then not stored (Result.NoRoom). It governs
	// appends only: replay removes what the log says was evicted.
	MaxPeers int
	// KeepNetworkEvents is how long CONNECT, DISCONNECT and DIAL_FAILED
	// events are kept before a running log prunes them
	// (DefaultKeepNetworkEvents if 0, for ever if negative).
	KeepNetworkEvents time.Duration
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
	maxPeers  int
	now       func() time.Time
	readOnly  bool
	onCommit  func(events int, took time.Duration)

	summaries summaries // derived per-origin digests for catch-up

	reqs      chan *request
	closing   chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	// failed holds the commit error that stopped the log; stopped is
	// closed when it is set.
	failed   atomic.Pointer[error]
	stopped  chan struct{}
	stopOnce sync.Once

	pruneMu sync.Mutex  // one Prune at a time
	ahead   signedAhead // Sign's newest own message
	// took, when set by a test, is called as the writer takes a request.
	took atomic.Pointer[func()]
	// ctx ends at Close; it stops a Prune under way.
	ctx    context.Context
	cancel context.CancelFunc
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
	// NoRoom is true for a DialFailed about a node the peer table has no
	// row of while the table holds Options.MaxPeers rows: a failed dial
	// proves nothing about a node, and must not grow the table past its
	// bound; nothing was written for it.
	NoRoom bool
	// Forked is true for a signed message that contradicts the chain of
	// its origin as held, which only the origin's key can do (doc.go,
	// "Hash chains"): its Prev does not name the held
	// message before it, or the held message after it does not name it.
	// Nothing was written for it.
	Forked bool
	// Unvouched is true for a message taken on a later message's word
	// (AppendVouched) whose voucher was not written: refused, or held
	// as another message. Nothing was written for it.
	Unvouched bool
	// Body is the body as stored: for the node's own Chat and Nick, with
	// origin, origin seq, time and signature filled in.
	Body Body
}

type request struct {
	bodies []Body
	// vouchedBy[i], when set, is the index in bodies of the message
	// whose writing bodies[i] depends on (AppendVouched), or -1.
	vouchedBy []int
	// unvouched marks the bodies found written without their voucher in
	// an earlier try of the transaction; they are not written.
	unvouched []bool
	// signedAhead: the node's own messages come signed (AppendSigned);
	// signedAgain is set when one had to be signed again.
	signedAhead, signedAgain bool
	results                  []Result
	err                      error
	done                     chan struct{}
}

// Open opens the log kept in st, first bringing the file's layout up to
// SchemaVersion (a read-only store that needs that is refused with
// store.ErrOldSchema). Unless opts.ReadOnly, it starts the writer
// goroutine; Close stops it.
func Open(st *store.Store, opts Options) (*Log, error) {
	if err := st.Migrate(migrations); err != nil {
		return nil, err
	}
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
		maxPeers:  opts.MaxPeers,
		now:       opts.Now,
		onCommit:  opts.OnCommit,
		reqs:      make(chan *request),
		closing:   make(chan struct{}),
		stopped:   make(chan struct{}),
	}
	if l.maxBatch <= 0 {
		l.maxBatch = DefaultMaxBatch
	}
	if l.maxPeers <= 0 {
		l.maxPeers = DefaultMaxPeers
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
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
	if keep := opts.KeepNetworkEvents; keep >= 0 {
		if keep == 0 {
			keep = DefaultKeepNetworkEvents
		}
		l.wg.Add(1)
		go l.pruner(keep)
	}
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
		l.cancel()
		if !l.readOnly {
			close(l.closing)
		}
	})
	l.wg.Wait()
	return nil
}

// Stopped is closed when a failed commit has stopped the log: from then
// on every Append fails with Err, and the node should stop and ask for a
// restart, which reads back what the file really holds.
func (l *Log) Stopped() <-chan struct{} { return l.stopped }

// Err is the failed commit that stopped the log, nil while it runs.
func (l *Log) Err() error {
	if err := l.failed.Load(); err != nil {
		return *err
	}
	return nil
}

func (l *Log) stop(err error) {
	l.stopOnce.Do(func() {
		err = fmt.Errorf("event log stopped: %w", err)
		l.failed.Store(&err)
		close(l.stopped)
	})
}

// stopOnWriteFailure stops the log if err is a failed commit.
func (l *Log) stopOnWriteFailure(err error) bool {
	if !errors.Is(err, store.ErrWriteFailed) {
		return false
	}
	l.stop(err)
	return true
}

// Append stores bodies durably, in order, and folds each into the
// projection in the same transaction. It returns once they are on disk.
//
// A signed message (Chat, Nick, Sealed, Ack) with OriginSeq 0 is this
// node's own: the log gives it the number after the highest of its own it
// holds, the time and the signature. Any other is stored once per (origin,
// origin seq); a repeat reports Duplicate. The bounds of Options apply inside the
// transaction, so no race between callers can pass them.
//
// What an error means:
//   - nil: every body is on disk (or was a duplicate or too far ahead, as
//     its Result says).
//   - ErrRefused: a body cannot be stored (unknown type, a time that does
//     not fit in int64 nanoseconds or is the Unix epoch itself); nothing
//     of the call was stored.
//   - ctx's error: ctx ended before the log took the call; nothing was
//     stored. Once the log has taken it, Append waits for the outcome
//     whatever ctx does, so it never reports failure for what it stored.
//   - ErrClosed, ErrReadOnly: nothing was stored.
//   - an error wrapping store.ErrWriteFailed: the commit failed and the
//     log has stopped (see Stopped); this call's bodies may or may not be
//     on disk, which the next start reads back. Every later Append fails
//     the same way.
//   - any other error: this call's bodies failed on their own (another
//     caller's failure never fails this one); nothing of it was stored.
func (l *Log) Append(ctx context.Context, bodies ...Body) ([]Result, error) {
	return l.submit(ctx, &request{bodies: bodies, done: make(chan struct{})})
}

// submit refuses what cannot be stored before it reaches the writer, and
// hands the rest of r over.
func (l *Log) submit(ctx context.Context, r *request) ([]Result, error) {
	if len(r.bodies) == 0 {
		return nil, nil
	}
	for _, b := range r.bodies {
		if err := storable(b); err != nil {
			return nil, fmt.Errorf("append: %w: %v", ErrRefused, err)
		}
	}
	if err := l.Err(); err != nil {
		return nil, err
	}
	return l.append(ctx, r)
}

// AppendVouched is Append for signed messages some of which were taken on
// a later message's word rather than checked on their own signatures
// (VerifyChainedOpen): vouchedBy[i] is the index in bodies of the message
// that chains to bodies[i] and vouches for it, or -1 for one that needs
// no voucher. The log takes the caller's word for the chaining as for the
// signature: it does not hash bodies[i] again to see that the voucher's
// Prev names it. A message whose voucher is not written (refused, or a
// duplicate of a held message that does not chain to it) is not written
// either (Result.Unvouched), so the log never holds a line whose own
// signature may fail without the line that vouches for it: a node that
// relays what it holds in order relays the voucher after it. Decided
// inside the write transaction, which is tried again without such
// messages when one is found.
func (l *Log) AppendVouched(ctx context.Context, bodies []Body, vouchedBy []int) ([]Result, error) {
	if len(bodies) == 0 {
		return nil, nil
	}
	if len(vouchedBy) != len(bodies) {
		return nil, fmt.Errorf("append: %d vouchers for %d bodies", len(vouchedBy), len(bodies))
	}
	for i, j := range vouchedBy {
		if j >= 0 && (j <= i || j >= len(bodies)) {
			return nil, fmt.Errorf("append: body %d vouched for by %d", i, j)
		}
	}
	return l.submit(ctx, &request{bodies: bodies, vouchedBy: vouchedBy, unvouched: make([]bool, len(bodies)), done: make(chan struct{})})
}

func (l *Log) append(ctx context.Context, r *request) ([]Result, error) {
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
	// Handed over: the writer commits it and always answers.
	<-r.done
	return r.results, r.err
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
		if took := l.took.Load(); took != nil {
			(*took)()
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
		l.run(batch)
	}
}

// run commits a batch and answers its producers. When the batch fails for
// a reason other than the disk, each request is retried alone, as bbolt's
// DB.Batch does, so only the one at fault fails.
func (l *Log) run(batch []*request) {
	start := time.Now()
	err := l.commit(batch)
	if l.onCommit != nil {
		// Before the acknowledgements: whoever sees its Append return
		// sees the commit counted.
		events := 0
		for _, r := range batch {
			events += len(r.bodies)
		}
		l.onCommit(events, time.Since(start))
	}
	switch {
	case err == nil:
	case l.stopOnWriteFailure(err):
		for _, r := range batch {
			r.results, r.err = nil, l.Err()
		}
	case len(batch) == 1:
		batch[0].results, batch[0].err = nil, err
	default:
		for _, r := range batch {
			l.run([]*request{r})
		}
		return
	}
	for _, r := range batch {
		close(r.done)
	}
}

// errRedo ends a try of commit's transaction that wrote a message
// without its voucher; the next try leaves that message out.
var errRedo = errors.New("written without its voucher")

// commit appends every request of the batch in one transaction, tried
// again while a try finds a message written without its voucher (each
// try leaves out more, so it ends).
func (l *Log) commit(batch []*request) error {
	for {
		if err := l.commitOnce(batch); !errors.Is(err, errRedo) {
			return err
		}
	}
}

func (l *Log) commitOnce(batch []*request) error {
	if err := l.Err(); err != nil {
		return err
	}
	var touched []NodeID
	err := l.st.Update(func(tx *bolt.Tx) error {
		touched = touched[:0]
		events := tx.Bucket(bucketEvents)
		events.FillPercent = 1 // append-only: fill pages densely
		chats := &chatMarks{b: tx.Bucket(bucketChats)}
		room := &peerRoom{max: l.maxPeers, rows: -1, bucket: tx.Bucket(bucketPeers), index: tx.Bucket(bucketHearsay)}
		p := txProjection{tx: tx, room: room, origins: originCache{}}
		seq := lastSeq(tx)
		now := l.now().Round(0).UTC()
		chains := chainCache{p: p, last: map[NodeID]*chainLink{}}
		for _, r := range batch {
			r.results = make([]Result, len(r.bodies))
			for i, body := range r.bodies {
				if r.unvouched != nil && r.unvouched[i] {
					r.results[i] = Result{Unvouched: true, Body: body}
					continue
				}
				if s, ok := body.(Signed); ok && r.signedAhead {
					if origin, oseq := s.OriginKey(); origin == l.self && oseq != 0 {
						fits, err := chains.follows(l.self, s)
						if err != nil {
							return err
						}
						if !fits {
							body, r.signedAgain = unstamped(s), true
						}
					}
				}
				body, err := l.prepare(&chains, body, now)
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
					forked, err := chains.forks(s, chains.vouchesForLast(r, i, s))
					if err != nil {
						return err
					}
					if forked {
						r.results[i] = Result{Forked: true, Body: body}
						continue
					}
				}
				if hearsay, ok := body.(Peers); ok {
					body = room.admit(hearsay, l.self)
				}
				if failed, ok := body.(DialFailed); ok && !room.fits(failed.ID, l.self) {
					r.results[i] = Result{NoRoom: true, Body: body}
					continue
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
					if err := chats.mark(seq); err != nil {
						return err
					}
				}
				if err := foldAsStored(p, l.self, e, data); err != nil {
					return err
				}
				r.results[i] = Result{Seq: seq, Body: body}
				if s, ok := body.(Signed); ok {
					origin, oseq := s.OriginKey()
					touched = append(touched, origin)
					chains.last[origin] = &chainLink{seq: oseq, msg: s, r: r, i: i}
				}
			}
			if redo, err := r.checkVouchers(p); err != nil || redo {
				if err == nil {
					err = errRedo
				}
				return err
			}
		}
		if err := chats.flush(); err != nil {
			return err
		}
		return p.flush()
	})
	if err == nil {
		l.summaries.touch(touched)
	}
	return err
}

// foldAsStored folds e, whose encoding is data, as Verify will fold it
// when it reads it back: the encoding normalises times (to UTC, without a
// monotonic reading), which a body handed in may not be. Chat and Sealed
// fold only their origin key and e.Seq, which the encoding keeps as they
// are, so they are folded without decoding data again; a catch-up is
// almost all of them.
func foldAsStored(p projection, self NodeID, e Event, data []byte) error {
	switch e.Body.(type) {
	case Chat, Sealed:
		return fold(p, self, e)
	}
	stored, err := Decode(e.Seq, data)
	if err != nil {
		return err
	}
	return fold(p, self, stored)
}

// peerRoom enforces Options.MaxPeers inside the transaction. It counts the
// table's rows once, when hearsay first names a node without one, and
// keeps the count as fold adds and removes rows.
type peerRoom struct {
	max    int
	rows   int // -1 until counted
	bucket *bolt.Bucket
	index  *bolt.Bucket // bucketHearsay
}

// admit returns hearsay as it is to be stored: an entry about a node
// without a row goes in while the table has room; once it is full, the
// least recently heard hearsay row that hearsay alone made is evicted for
// it (named in Evicted, which fold removes), and only when no such row is
// left is the entry dropped. Rows of nodes this node knows first hand are
// never evicted, and learning from hearsay never stops while any row is
// hearsay. The victims come in order from the hearsay index, so finding
// one costs a cursor step, not a pass over the table.
func (r *peerRoom) admit(hearsay Peers, self NodeID) Peers {
	kept := make([]PeerInfo, 0, len(hearsay.Peers))
	hearsay.Evicted = nil
	// A victim must not be a node this very event names: fold evicts
	// before it folds the entries.
	named := make(map[NodeID]bool, len(hearsay.Peers))
	for _, info := range hearsay.Peers {
		named[info.ID] = true
	}
	var (
		c      *bolt.Cursor
		k      []byte
		adding = map[NodeID]bool{}
	)
	for _, info := range hearsay.Peers {
		if info.ID == self || info.ID.IsZero() || adding[info.ID] || r.bucket.Get(info.ID[:]) != nil {
			kept = append(kept, info)
			continue
		}
		if r.rows < 0 {
			r.rows = r.bucket.Stats().KeyN
		}
		if r.rows+len(adding)-len(hearsay.Evicted) < r.max {
			adding[info.ID] = true
			kept = append(kept, info)
			continue
		}
		if c == nil {
			c = r.index.Cursor()
			k, _ = c.First()
		} else if k != nil {
			k, _ = c.Next()
		}
		for ; k != nil; k, _ = c.Next() {
			if id, ok := heardID(k); ok && !named[id] {
				break
			}
		}
		if k == nil {
			continue // nothing left to give way: only known peers
		}
		id, _ := heardID(k)
		hearsay.Evicted = append(hearsay.Evicted, id)
		adding[info.ID] = true
		kept = append(kept, info)
	}
	hearsay.Peers = kept
	return hearsay
}

// fits reports whether the table can take a row of id made by anything
// but PEERS: there is one already, or room for it.
func (r *peerRoom) fits(id, self NodeID) bool {
	if id == self || id.IsZero() || r.bucket.Get(id[:]) != nil {
		return true
	}
	if r.rows < 0 {
		r.rows = r.bucket.Stats().KeyN
	}
	return r.rows < r.max
}

// heardKey is a row's key in the hearsay index: the seq it was last heard
// at, then its ID, so that the index reads least recently heard first.
func heardKey(seq uint64, id NodeID) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(id)), seq), id[:]...)
}

func heardID(k []byte) (NodeID, bool) {
	var id NodeID
	if len(k) != 8+len(id) {
		return id, false
	}
	copy(id[:], k[8:])
	return id, true
}

// prepare numbers, stamps and signs the node's own signed messages: those
// handed in with OriginSeq 0. Their origin seq follows the highest of its
// own the log holds, not its watermark: a log that lacks some of its own
// early messages (restored from an old backup, or caught up from peers out
// of order) must never hand out a number its peers already hold, or they
// would drop the new message as a duplicate.
//
// A Chat or Nick of its own chains to the node's message before it
// (ChainHash), which it holds unless it is its first.
func (l *Log) prepare(chains *chainCache, body Body, now time.Time) (Body, error) {
	s, ok := body.(stampable)
	if !ok || !unnumbered(s) {
		return body, nil
	}
	seq, prev, err := chains.nextOwn(l.self, s)
	if err != nil {
		return nil, err
	}
	return s.stamped(seq, now, l.key, prev), nil
}

// nextOwn is the origin seq and Prev the node's own message s gets now:
// the seq after the newest one the log holds, and, if s is of a type that
// chains, that one's chain hash when the log holds it (Sealed and Ack do
// not chain).
func (c *chainCache) nextOwn(self NodeID, s Signed) (uint64, []byte, error) {
	seq := c.p.lastOrigin(self) + 1
	if !chainable(s) || seq == 1 {
		return seq, nil, nil
	}
	h, held, err := c.hash(self, seq-1)
	if err != nil || !held {
		return seq, nil, err
	}
	return seq, h, nil
}

// chainLink is the newest signed message of an origin a transaction
// wrote: its origin seq, the message, its chain hash once asked for, and
// the request and index it came as.
type chainLink struct {
	seq  uint64
	msg  Signed
	hash []byte // nil until hash asks
	r    *request
	i    int
}

// chainCache finds the chain hashes of held messages inside one write
// transaction. A run of an origin's messages written together (a
// catch-up, a burst of the node's own lines) finds each one's
// predecessor in last, without reading it back.
type chainCache struct {
	p    txProjection
	last map[NodeID]*chainLink
}

// hash returns the chain hash of the held message (origin, seq), and
// whether it is held.
func (c *chainCache) hash(origin NodeID, seq uint64) ([]byte, bool, error) {
	if l, ok := c.last[origin]; ok && l.seq == seq {
		if l.hash == nil {
			l.hash = ChainHash(l.msg)
		}
		return l.hash, true, nil
	}
	m, ok, err := c.p.signed(origin, seq)
	if err != nil || !ok {
		return nil, false, err
	}
	return ChainHash(m), true, nil
}

// forks reports whether s contradicts its origin's chain as held: a Prev
// that does not name the held message before it, or a held chained
// message after it that does not name s. With vouchesForLast
// (chainCache.vouchesForLast) the caller found that s names the message
// written before it, which is then not hashed again.
func (c *chainCache) forks(s Signed, vouchesForLast bool) (bool, error) {
	origin, seq := s.OriginKey()
	if prev := prevOf(s); len(prev) > 0 && !vouchesForLast {
		h, held, err := c.hash(origin, seq-1)
		if err != nil {
			return false, err
		}
		if held && !bytes.Equal(h, prev) {
			return true, nil
		}
	}
	next, held, err := c.p.signed(origin, seq+1)
	if err != nil || !held {
		return false, err
	}
	if prev := prevOf(next); len(prev) > 0 && !bytes.Equal(prev, ChainHash(s)) {
		return true, nil
	}
	return false, nil
}

// vouchesForLast reports whether s, body i of r, is the message r's
// caller said vouches for the one the transaction wrote last of its origin
// (AppendVouched's vouchedBy): the caller found s's Prev to be that
// message's chain hash when it took the message on s's word. A catch-up
// is runs of such pairs, and each would otherwise be hashed once more
// here.
func (c *chainCache) vouchesForLast(r *request, i int, s Signed) bool {
	origin, seq := s.OriginKey()
	l, ok := c.last[origin]
	return ok && l.seq+1 == seq && l.r == r && r.vouchedBy != nil && r.vouchedBy[l.i] == i
}

// lastSeq is the highest sequence number the log has used: its newest
// event's, or the retention checkpoint's if pruning removed every event up
// to it. A number is never used twice.
func lastSeq(tx *bolt.Tx) uint64 {
	var last uint64
	if k, _ := tx.Bucket(bucketEvents).Cursor().Last(); len(k) == 8 {
		last = binary.BigEndian.Uint64(k)
	}
	if b := tx.Bucket(bucketLog); b != nil {
		if v := b.Get(keyCut); len(v) == 8 {
			last = max(last, binary.BigEndian.Uint64(v))
		}
	}
	return last
}

// txProjection is the projection as stored, inside one transaction.
// room, when set, has its row count kept as rows come and go; origins,
// when set, keeps what the transaction learns of each origin, and a
// transaction that writes through it calls flush before it commits.
type txProjection struct {
	tx      *bolt.Tx
	room    *peerRoom
	origins originCache
}

// originCache is what one transaction knows of each origin it touched:
// its bucket of the origin index, the highest origin seq held and the
// watermark. A catch-up writes hundreds of one origin's messages, in
// order, in one transaction, and each asks whether it is held (the
// duplicate check), whether its successor is (forks) and whether the
// watermark passes it (foldOrigin): with the highest seq at hand, a lookup
// above it is a miss found without searching the B+tree, and the
// watermark is read once and written once, by flush.
type originCache map[NodeID]*originEntry

type originEntry struct {
	bucket     *bolt.Bucket // nil while the origin has none
	top        uint64       // the highest origin seq held
	mark       uint64
	markRead   bool // mark is set
	markToSave bool // mark is to be written by flush
}

// origin returns origin's bucket of the origin index (nil if none) and
// the highest origin seq it may hold: exact with a cache, the largest
// seq without one.
func (p txProjection) origin(origin NodeID) (*bolt.Bucket, uint64) {
	if p.origins == nil {
		return p.tx.Bucket(bucketOrigins).Bucket(origin[:]), math.MaxUint64
	}
	st := p.entry(origin)
	return st.bucket, st.top
}

func (p txProjection) entry(origin NodeID) *originEntry {
	st, ok := p.origins[origin]
	if !ok {
		st = &originEntry{bucket: p.tx.Bucket(bucketOrigins).Bucket(origin[:])}
		st.top = lastKey(st.bucket)
		p.origins[origin] = st
	}
	return st
}

// lastKey is the highest origin seq of an origin's bucket, 0 if none.
func lastKey(b *bolt.Bucket) uint64 {
	if b == nil {
		return 0
	}
	k, _ := b.Cursor().Last()
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

// flush writes the watermarks the cache holds back. A write transaction
// with a cache calls it last, before it commits.
func (p txProjection) flush() error {
	for origin, st := range p.origins {
		if !st.markToSave {
			continue
		}
		if err := p.tx.Bucket(bucketWatermarks).Put(origin[:], seqKey(st.mark)); err != nil {
			return err
		}
		st.markToSave = false
	}
	return nil
}

func (p txProjection) peer(id NodeID) (Peer, bool, error) {
	b := p.tx.Bucket(bucketPeers).Get(id[:])
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
	peers := p.tx.Bucket(bucketPeers)
	if p.room != nil && p.room.rows >= 0 && peers.Get(r.ID[:]) == nil {
		p.room.rows++
	}
	return peers.Put(r.ID[:], b)
}

func (p txProjection) deletePeer(r Peer) error {
	if r.Hearsay() {
		if err := p.tx.Bucket(bucketHearsay).Delete(heardKey(r.Heard, r.ID)); err != nil {
			return err
		}
	}
	if p.room != nil && p.room.rows >= 0 {
		p.room.rows--
	}
	return p.tx.Bucket(bucketPeers).Delete(r.ID[:])
}

func (p txProjection) reindexHeard(id NodeID, old, heard uint64) error {
	index := p.tx.Bucket(bucketHearsay)
	if old != 0 {
		if err := index.Delete(heardKey(old, id)); err != nil {
			return err
		}
	}
	if heard == 0 {
		return nil
	}
	return index.Put(heardKey(heard, id), nil)
}

func (p txProjection) watermark(origin NodeID) (uint64, error) {
	if p.origins == nil {
		return p.storedWatermark(origin)
	}
	st := p.entry(origin)
	if !st.markRead {
		mark, err := p.storedWatermark(origin)
		if err != nil {
			return 0, err
		}
		st.mark, st.markRead = mark, true
	}
	return st.mark, nil
}

func (p txProjection) storedWatermark(origin NodeID) (uint64, error) {
	b := p.tx.Bucket(bucketWatermarks).Get(origin[:])
	if b == nil {
		return 0, nil
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: watermark of %s has %d bytes", store.ErrCorrupt, origin.Short(), len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

func (p txProjection) putWatermark(origin NodeID, seq uint64) error {
	if p.origins == nil {
		return p.tx.Bucket(bucketWatermarks).Put(origin[:], seqKey(seq))
	}
	st := p.entry(origin)
	st.mark, st.markRead, st.markToSave = seq, true, true
	return nil
}

// signed returns the held signed message (origin, seq), if held.
func (p txProjection) signed(origin NodeID, seq uint64) (Signed, bool, error) {
	b, top := p.origin(origin)
	if b == nil || seq > top {
		return nil, false, nil
	}
	v := b.Get(seqKey(seq))
	if v == nil {
		return nil, false, nil
	}
	local, n := binary.Uvarint(v)
	if n <= 0 {
		return nil, false, fmt.Errorf("%w: bad origin index row", store.ErrCorrupt)
	}
	e, err := Decode(local, p.tx.Bucket(bucketEvents).Get(seqKey(local)))
	if err != nil {
		return nil, false, err
	}
	m, ok := e.Body.(Signed)
	if !ok {
		return nil, false, fmt.Errorf("%w: origin index of %s/%d names a %v", store.ErrCorrupt, origin.Short(), seq, e.Body.Type())
	}
	return m, true, nil
}

func (p txProjection) hasOrigin(origin NodeID, seq uint64) (bool, error) {
	b, top := p.origin(origin)
	return b != nil && seq <= top && b.Get(seqKey(seq)) != nil, nil
}

// lastOrigin is the highest origin seq held of origin.
func (p txProjection) lastOrigin(origin NodeID) uint64 {
	if p.origins != nil {
		return p.entry(origin).top
	}
	return lastKey(p.tx.Bucket(bucketOrigins).Bucket(origin[:]))
}

func (p txProjection) putOrigin(origin NodeID, originSeq, seq uint64) error {
	b, _ := p.origin(origin)
	if b == nil {
		var err error
		if b, err = p.tx.Bucket(bucketOrigins).CreateBucketIfNotExists(origin[:]); err != nil {
			return err
		}
	}
	b.FillPercent = 1
	if err := b.Put(seqKey(originSeq), binary.AppendUvarint(nil, seq)); err != nil {
		return err
	}
	if p.origins != nil {
		st := p.entry(origin)
		st.bucket, st.top = b, max(st.top, originSeq)
	}
	return nil
}

// LastSeq is the sequence number of the newest event, 0 for an empty log.
func (l *Log) LastSeq() (uint64, error) {
	var seq uint64
	err := l.st.View(func(tx *bolt.Tx) error {
		seq = lastSeq(tx)
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
			c := tx.Bucket(bucketEvents).Cursor()
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
func (l *Log) LastChats(n int) ([]Event, error) { return l.ChatsBefore(0, n) }

// Peers returns the peer table.
func (l *Log) Peers() ([]Peer, error) {
	var out []Peer
	err := l.st.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPeers).ForEach(func(_, v []byte) error {
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
		return tx.Bucket(bucketWatermarks).ForEach(func(k, v []byte) error {
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
	out, _, err := l.ByOriginPage(origin, after, limit, 0)
	return out, err
}

// ByOriginPage is ByOrigin bounded in bytes too: it stops once the stored
// events it read add up to maxBytes or more (0: no bound), after one event
// at least, so that a page of long lines holds no more memory than one
// of short ones. full reports that it stopped at a bound: more may follow.
func (l *Log) ByOriginPage(origin NodeID, after uint64, limit, maxBytes int) (out []Event, full bool, err error) {
	if after == math.MaxUint64 {
		return nil, false, nil // nothing follows; after+1 would wrap to 0
	}
	err = l.st.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOrigins).Bucket(origin[:])
		if b == nil {
			return nil
		}
		events := tx.Bucket(bucketEvents)
		c := b.Cursor()
		size := 0
		for k, v := c.Seek(seqKey(after + 1)); k != nil; k, v = c.Next() {
			if len(out) >= limit || (maxBytes > 0 && size >= maxBytes) {
				full = true
				return nil
			}
			seq, n := binary.Uvarint(v)
			if n <= 0 {
				return fmt.Errorf("%w: bad origin index row", store.ErrCorrupt)
			}
			row := events.Get(seqKey(seq))
			e, err := Decode(seq, row)
			if err != nil {
				return err
			}
			out = append(out, e)
			size += len(row)
		}
		return nil
	})
	return out, full, err
}

// checkVouchers marks the messages of r written without their voucher,
// and those that depend on them, and reports whether there were any. A
// voucher counts when it was written, or is a duplicate of a held message
// that chains to the one it vouches for.
func (r *request) checkVouchers(p txProjection) (bool, error) {
	if r.vouchedBy == nil {
		return false, nil
	}
	ok := make([]bool, len(r.bodies)) // written, and vouched for if need be
	redo := false
	for i := len(r.bodies) - 1; i >= 0; i-- {
		if r.results[i].Seq == 0 {
			continue // not written: nothing to undo
		}
		j := r.vouchedBy[i]
		vouched := j < 0 || ok[j]
		if !vouched && r.results[j].Duplicate {
			s, sok := r.bodies[i].(Signed)
			v, vok := r.bodies[j].(Signed)
			if sok && vok {
				origin, seq := v.OriginKey()
				held, found, err := p.signed(origin, seq)
				if err != nil {
					return false, err
				}
				vouched = found && bytes.Equal(prevOf(held), ChainHash(s))
			}
		}
		if vouched {
			ok[i] = true
			continue
		}
		r.unvouched[i], redo = true, true
	}
	return redo, nil
}
