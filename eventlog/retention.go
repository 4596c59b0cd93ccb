package eventlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Retention. Chat lines, renames, bans and what peers said of themselves
// (JOIN, PEERS) are the node's history and stay. The network events
// (CONNECT, DISCONNECT, DIAL_FAILED) matter only for what they did to the
// peer table; a node that runs for a year gathers hundreds of thousands of
// them. Prune drops those older than a cut-off, after it has stored a
// checkpoint: the peer table as the log made it up to the last pruned
// event. Verify then starts its fold of the peer table from the checkpoint
// (and rebuilds the origin index from sequence 1, since every signed
// message is still there), so it stays a full check of what is left.
//
// The checkpoint lives in bucketLog: key "cut" holds the sequence number
// it was taken at (8 bytes, big-endian); the nested bucket "peers" holds
// the peer rows as of then, in the peer table's own encoding.
var (
	keyCut         = []byte("cut")
	bucketCutPeers = []byte("peers")
)

// DefaultKeepNetworkEvents is how long network events are kept when
// Options.KeepNetworkEvents is 0: long enough to look into a month of
// connection trouble.
const DefaultKeepNetworkEvents = 30 * 24 * time.Hour

// pruneEvery is how often a running log prunes.
const pruneEvery = 24 * time.Hour

// isNetworkEvent reports the events retention drops.
func isNetworkEvent(t Type) bool {
	return t == TypeConnect || t == TypeDisconnect || t == TypeDialFailed
}

// PruneResult says what Prune did.
type PruneResult struct {
	// Cut is the sequence number the checkpoint now stands at.
	Cut uint64
	// Removed counts the network events deleted.
	Removed int
}

// Prune deletes the network events older than before, after storing the
// checkpoint of the peer table at the last of them. Events are only read
// in chunks and deleted in small transactions, so appends go on meanwhile;
// a Prune that stops half way leaves a log that verifies, and the next
// one finishes the work.
func (l *Log) Prune(ctx context.Context, before time.Time) (PruneResult, error) {
	if l.readOnly {
		return PruneResult{}, ErrReadOnly
	}
	l.pruneMu.Lock()
	defer l.pruneMu.Unlock()
	peers := peerProjection{newMemProjection()}
	var cut uint64
	err := l.st.View(func(tx *bolt.Tx) error {
		var rep Report
		var err error
		cut, err = readCheckpoint(tx, peers.memProjection, &rep)
		if err == nil && len(rep.Problems) > 0 {
			err = fmt.Errorf("retention checkpoint: %s", rep.Problems[0])
		}
		return err
	})
	if err != nil {
		return PruneResult{}, err
	}
	// Events up to the new cut are fixed once written: reading them in
	// chunks, apart from the writer, sees what any later reader would.
	newCut, doomed := cut, []uint64(nil)
	scanErr := l.Scan(ctx, cut+1, func(e Event) error {
		if !e.Time.Before(before) {
			return errStopScan
		}
		if err := fold(peers, l.self, e); err != nil {
			return err
		}
		newCut = e.Seq
		if isNetworkEvent(e.Body.Type()) {
			doomed = append(doomed, e.Seq)
		}
		return nil
	})
	if scanErr != nil && !errors.Is(scanErr, errStopScan) {
		return PruneResult{}, scanErr
	}
	if newCut == cut {
		return PruneResult{Cut: cut}, nil
	}
	err = l.st.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLog)
		if b.Bucket(bucketCutPeers) != nil {
			if err := b.DeleteBucket(bucketCutPeers); err != nil {
				return err
			}
		}
		rows, err := b.CreateBucket(bucketCutPeers)
		if err != nil {
			return err
		}
		for id, p := range peers.peers {
			v, err := encodePeer(p)
			if err != nil {
				return err
			}
			if err := rows.Put(id[:], v); err != nil {
				return err
			}
		}
		return b.Put(keyCut, seqKey(newCut))
	})
	if err != nil {
		l.stopOnWriteFailure(err)
		return PruneResult{Cut: cut}, err
	}
	res := PruneResult{Cut: newCut}
	const perTx = 1024
	for len(doomed) > 0 {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		n := min(perTx, len(doomed))
		err := l.st.Update(func(tx *bolt.Tx) error {
			events := tx.Bucket(bucketEvents)
			for _, seq := range doomed[:n] {
				if err := events.Delete(seqKey(seq)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			l.stopOnWriteFailure(err)
			return res, err
		}
		res.Removed += n
		doomed = doomed[n:]
	}
	return res, nil
}

var errStopScan = errors.New("stop scan")

// pruner prunes once soon after Open and then every pruneEvery, until
// Close.
func (l *Log) pruner(keep time.Duration) {
	defer l.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-l.closing:
			return
		case <-l.stopped:
			return
		case <-t.C:
		}
		// A failure here loses nothing: the events stay until the next
		// try, and a failed commit stops the log, which says so.
		_, _ = l.Prune(l.ctx, l.now().Add(-keep))
		t.Reset(pruneEvery)
	}
}

// readCheckpoint loads the checkpoint's peer rows into mem and returns its
// sequence number, 0 when the log was never pruned.
func readCheckpoint(tx *bolt.Tx, mem *memProjection, rep *Report) (uint64, error) {
	b := tx.Bucket(bucketLog)
	if b == nil {
		return 0, nil
	}
	var cut uint64
	switch v := b.Get(keyCut); len(v) {
	case 0:
	case 8:
		cut = binary.BigEndian.Uint64(v)
	default:
		rep.problem("retention checkpoint is malformed: %x", v)
	}
	rows := b.Bucket(bucketCutPeers)
	if rows == nil {
		return cut, nil
	}
	return cut, rows.ForEach(func(k, v []byte) error {
		var id NodeID
		if len(k) != len(id) {
			rep.problem("checkpoint peer key of %d bytes: %x", len(k), k)
			return nil
		}
		copy(id[:], k)
		p, err := decodePeer(v)
		if err != nil {
			rep.problem("checkpoint peer %s: %v", id.Short(), err)
			return nil
		}
		mem.peers[id] = p
		return nil
	})
}

// peerProjection folds only the peer table: Prune needs nothing else, and
// the origin index of a year of chat would not fit in memory for nothing.
type peerProjection struct{ *memProjection }

func (peerProjection) watermark(NodeID) (uint64, error)       { return 0, nil }
func (peerProjection) putWatermark(NodeID, uint64) error      { return nil }
func (peerProjection) hasOrigin(NodeID, uint64) (bool, error) { return false, nil }
func (peerProjection) putOrigin(NodeID, uint64, uint64) error { return nil }
