package eventlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// The stored form of an event is compact binary, because the log holds
// every chat line the network ever carried:
//
//	byte 0    codec version (4)
//	byte 1    Type
//	varint    local time, unix nanoseconds (zigzag)
//	...       the body's fields in declaration order: IDs and signatures
//	          raw, integers as varints, strings and lists length-prefixed.
//
// Version 2 stores the origin time of a Chat or Nick as its distance from
// the local time (a byte or a few instead of nine); version 1 stored it
// whole. Version 3 adds to PEERS the IDs of the rows it evicted, after
// its entries (a count, then the IDs). Version 4 adds to CHAT and NICK
// their Prev, the chain hash (chain.go), after the signature (empty when
// the line does not chain). (Version 1 also holds PRIVATE records
// without the trailing Ref, written before Ref existed; the decoder reads
// both.) A new layout gets a new version; decoders keep reading every older one, so a log never
// needs rewriting. golden_test.go holds records of every type in every
// version, as they are on disk.
const codecVersion = 4

// ErrDecode is returned for a stored event that cannot be decoded.
var ErrDecode = errors.New("undecodable event")

// Encode returns the stored form of e (its Seq is the key, not part of the
// value).
func Encode(e Event) ([]byte, error) {
	if e.Body == nil {
		return nil, errors.New("encode event: no body")
	}
	w := encoder{buf: make([]byte, 0, 128)}
	w.buf = append(w.buf, codecVersion, byte(e.Body.Type()))
	w.time(e.Time)
	switch b := e.Body.(type) {
	case Join:
		w.id(b.ID)
		w.str(b.Name)
		w.strs(b.Addrs)
		w.uint(uint64(b.Version))
	case Peers:
		w.id(b.From)
		w.uint(uint64(len(b.Peers)))
		for _, p := range b.Peers {
			w.id(p.ID)
			w.str(p.Name)
			w.strs(p.Addrs)
		}
		w.uint(uint64(len(b.Evicted)))
		for _, id := range b.Evicted {
			w.id(id)
		}
	case Connect:
		w.id(b.ID)
		w.str(b.Addr)
		w.bool(b.Inbound)
	case Disconnect:
		w.id(b.ID)
		w.str(b.Reason)
	case DialFailed:
		w.id(b.ID)
		w.str(b.Addr)
		w.str(b.Error)
	case Chat:
		w.id(b.Origin)
		w.uint(b.OriginSeq)
		w.relTime(b.OriginTime, e.Time)
		w.str(b.Name)
		w.str(b.Text)
		w.bytes(b.Sig)
		w.bytes(b.Prev)
	case Nick:
		w.id(b.Origin)
		w.uint(b.OriginSeq)
		w.relTime(b.OriginTime, e.Time)
		w.str(b.Name)
		w.bytes(b.Sig)
		w.bytes(b.Prev)
	case Private:
		w.id(b.From)
		w.id(b.To)
		w.str(b.Name)
		w.str(b.Text)
		w.time(b.SentTime)
		w.uint(b.Ref)
	case Delivered:
		w.id(b.To)
		w.uint(b.Seq)
	case Ban:
		w.id(b.ID)
		w.time(b.Until)
		w.str(b.Reason)
	case Unban:
		w.id(b.ID)
	case Sealed:
		w.id(b.Origin)
		w.uint(b.OriginSeq)
		w.relTime(b.OriginTime, e.Time)
		w.str(b.Name)
		w.id(b.To)
		w.bytes(b.Box)
		w.bytes(b.Own)
		w.bytes(b.Sig)
	case Ack:
		w.id(b.Origin)
		w.uint(b.OriginSeq)
		w.relTime(b.OriginTime, e.Time)
		w.id(b.To)
		w.uint(b.Ref)
		w.bytes(b.Sig)
	default:
		return nil, fmt.Errorf("encode event: unknown body %T", e.Body)
	}
	return w.buf, nil
}

// storable says why b cannot be stored as it is: a type Encode does not
// know, or a time the encoding cannot hold.
func storable(b Body) error {
	var times []time.Time
	switch b := b.(type) {
	case Join, Peers, Connect, Disconnect, DialFailed, Unban, Delivered:
	case Chat:
		times = append(times, b.OriginTime)
	case Nick:
		times = append(times, b.OriginTime)
	case Private:
		times = append(times, b.SentTime)
	case Sealed:
		times = append(times, b.OriginTime)
	case Ack:
		times = append(times, b.OriginTime)
	case Ban:
		times = append(times, b.Until)
	default:
		return fmt.Errorf("cannot store event body %T", b)
	}
	for _, t := range times {
		if err := CheckTime(t); err != nil {
			return fmt.Errorf("%v: %w", b.Type(), err)
		}
	}
	return nil
}

// Times the log can hold: int64 nanoseconds since the Unix epoch, from
// 1677-09-21 to 2262-04-11.
var (
	minTime = time.Unix(0, math.MinInt64).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

// CheckTime refuses a time the log cannot store faithfully: one outside
// int64 nanoseconds (which would wrap to another date: a ban for 2562047h
// would end in the past), or the Unix epoch itself, which the encoding
// keeps for the zero time (a ban until then would read back as a ban for
// good). The zero time is fine.
func CheckTime(t time.Time) error {
	switch {
	case t.IsZero():
		return nil
	case t.Before(minTime) || t.After(maxTime):
		return fmt.Errorf("time %s is outside %d to %d", t.UTC().Format(time.RFC3339), minTime.Year(), maxTime.Year())
	case t.UnixNano() == 0:
		return errors.New("time is the Unix epoch, which the log keeps for \"no time\"")
	}
	return nil
}

// Decode parses the stored form of an event. It never panics and never
// keeps a reference to data, which may be memory owned by a bbolt
// transaction.
func Decode(seq uint64, data []byte) (Event, error) {
	if len(data) < 2 {
		return Event{}, fmt.Errorf("%w %d: %d bytes", ErrDecode, seq, len(data))
	}
	version := data[0]
	if version < 1 || version > codecVersion {
		return Event{}, fmt.Errorf("%w %d: codec version %d", ErrDecode, seq, version)
	}
	r := decoder{buf: data[2:]}
	e := Event{Seq: seq, Time: r.time()}
	originTime := func() time.Time {
		if version == 1 {
			return r.time()
		}
		return r.relTime(e.Time)
	}
	switch Type(data[1]) {
	case TypeJoin:
		e.Body = Join{ID: r.id(), Name: r.str(), Addrs: r.strs(), Version: int(r.uint())}
	case TypePeers:
		b := Peers{From: r.id()}
		n := r.count(32 + 2)
		for i := 0; i < n && r.err == nil; i++ {
			b.Peers = append(b.Peers, PeerInfo{ID: r.id(), Name: r.str(), Addrs: r.strs()})
		}
		if version >= 3 {
			n := r.count(32)
			for i := 0; i < n && r.err == nil; i++ {
				b.Evicted = append(b.Evicted, r.id())
			}
		}
		e.Body = b
	case TypeConnect:
		e.Body = Connect{ID: r.id(), Addr: r.str(), Inbound: r.bool()}
	case TypeDisconnect:
		e.Body = Disconnect{ID: r.id(), Reason: r.str()}
	case TypeDialFailed:
		e.Body = DialFailed{ID: r.id(), Addr: r.str(), Error: r.str()}
	case TypeChat:
		b := Chat{Origin: r.id(), OriginSeq: r.uint(), OriginTime: originTime(), Name: r.str(), Text: r.str(), Sig: r.bytes()}
		if version >= 4 {
			b.Prev = r.bytes()
		}
		e.Body = b
	case TypeNick:
		b := Nick{Origin: r.id(), OriginSeq: r.uint(), OriginTime: originTime(), Name: r.str(), Sig: r.bytes()}
		if version >= 4 {
			b.Prev = r.bytes()
		}
		e.Body = b
	case TypePrivate:
		b := Private{From: r.id(), To: r.id(), Name: r.str(), Text: r.str(), SentTime: r.time()}
		// Version 1 was written in two layouts: the first had no Ref.
		if version > 1 || len(r.buf) > 0 {
			b.Ref = r.uint()
		}
		e.Body = b
	case TypeDelivered:
		e.Body = Delivered{To: r.id(), Seq: r.uint()}
	case TypeBan:
		e.Body = Ban{ID: r.id(), Until: r.time(), Reason: r.str()}
	case TypeUnban:
		e.Body = Unban{ID: r.id()}
	case TypeSealed:
		e.Body = Sealed{Origin: r.id(), OriginSeq: r.uint(), OriginTime: originTime(), Name: r.str(), To: r.id(), Box: r.bytes(), Own: r.bytes(), Sig: r.bytes()}
	case TypeAck:
		e.Body = Ack{Origin: r.id(), OriginSeq: r.uint(), OriginTime: originTime(), To: r.id(), Ref: r.uint(), Sig: r.bytes()}
	default:
		return Event{}, fmt.Errorf("%w %d: unknown type %d", ErrDecode, seq, data[1])
	}
	if r.err == nil && len(r.buf) != 0 {
		r.err = fmt.Errorf("%d trailing bytes", len(r.buf))
	}
	if r.err != nil {
		return Event{}, fmt.Errorf("%w %d (%s): %v", ErrDecode, seq, Type(data[1]), r.err)
	}
	return e, nil
}

type encoder struct{ buf []byte }

func (w *encoder) uint(v uint64) { w.buf = binary.AppendUvarint(w.buf, v) }
func (w *encoder) id(id NodeID)  { w.buf = append(w.buf, id[:]...) }
func (w *encoder) bytes(b []byte) {
	w.uint(uint64(len(b)))
	w.buf = append(w.buf, b...)
}
func (w *encoder) str(s string) {
	w.uint(uint64(len(s)))
	w.buf = append(w.buf, s...)
}
func (w *encoder) strs(ss []string) {
	w.uint(uint64(len(ss)))
	for _, s := range ss {
		w.str(s)
	}
}
func (w *encoder) bool(v bool) {
	if v {
		w.buf = append(w.buf, 1)
	} else {
		w.buf = append(w.buf, 0)
	}
}

// time stores the zero time as 0, so it survives a round trip as IsZero.
func (w *encoder) time(t time.Time) {
	if t.IsZero() {
		w.buf = binary.AppendVarint(w.buf, 0)
		return
	}
	w.buf = binary.AppendVarint(w.buf, t.UnixNano())
}

// relTime stores t as its distance from base. The zero time counts as
// nanosecond 0, as in time, so both survive a round trip.
func (w *encoder) relTime(t, base time.Time) {
	w.buf = binary.AppendVarint(w.buf, unixNano(t)-unixNano(base))
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// decoder reads what encoder wrote; the first error sticks and every later
// read returns a zero value.
type decoder struct {
	buf []byte
	err error
}

func (r *decoder) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

func (r *decoder) uint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.buf)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

func (r *decoder) time() time.Time {
	if r.err != nil {
		return time.Time{}
	}
	v, n := binary.Varint(r.buf)
	if n <= 0 {
		r.fail("bad time")
		return time.Time{}
	}
	r.buf = r.buf[n:]
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}

func (r *decoder) relTime(base time.Time) time.Time {
	if r.err != nil {
		return time.Time{}
	}
	d, n := binary.Varint(r.buf)
	if n <= 0 {
		r.fail("bad time")
		return time.Time{}
	}
	r.buf = r.buf[n:]
	v := unixNano(base) + d
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}

func (r *decoder) id() NodeID {
	var id NodeID
	if r.err != nil {
		return id
	}
	if len(r.buf) < len(id) {
		r.fail("short node id")
		return id
	}
	copy(id[:], r.buf)
	r.buf = r.buf[len(id):]
	return id
}

// count reads a length and checks it against what is left, given the
// smallest encoding of one element, so a corrupt length cannot make the
// decoder allocate more than the input could hold.
func (r *decoder) count(minSize int) int {
	n := r.uint()
	if r.err != nil {
		return 0
	}
	if n > uint64(len(r.buf)/minSize) {
		r.fail("length %d exceeds the %d bytes left", n, len(r.buf))
		return 0
	}
	return int(n)
}

func (r *decoder) bytes() []byte {
	n := r.count(1)
	if r.err != nil || n == 0 {
		return nil
	}
	out := make([]byte, n)
	copy(out, r.buf)
	r.buf = r.buf[n:]
	return out
}

func (r *decoder) str() string {
	n := r.count(1)
	if r.err != nil {
		return ""
	}
	s := string(r.buf[:n])
	r.buf = r.buf[n:]
	return s
}

func (r *decoder) strs() []string {
	n := r.count(1)
	if n == 0 {
		return nil
	}
	out := make([]string, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		out = append(out, r.str())
	}
	return out
}

func (r *decoder) bool() bool {
	if r.err != nil {
		return false
	}
	if len(r.buf) < 1 || r.buf[0] > 1 {
		r.fail("bad bool")
		return false
	}
	v := r.buf[0] == 1
	r.buf = r.buf[1:]
	return v
}
