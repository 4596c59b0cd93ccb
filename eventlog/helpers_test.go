package eventlog_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/store"
	bolt "go.etcd.io/bbolt"
)

// openLog opens (creating) the store in dir and its log; both are closed
// when the test ends.
func openLog(t testing.TB, dir string, sopts store.Options, lopts eventlog.Options) *eventlog.Log {
	t.Helper()
	st, err := store.Open(dir, sopts)
	if err != nil {
		t.Fatalf("store.Open(%s): %v", dir, err)
	}
	l, err := eventlog.Open(st, lopts)
	if err != nil {
		st.Close()
		t.Fatalf("eventlog.Open: %v", err)
	}
	t.Cleanup(func() {
		l.Close()
		st.Close()
	})
	return l
}

// newLog is a log in a fresh directory with a clock that ticks one second
// per commit.
func newLog(t testing.TB) *eventlog.Log {
	t.Helper()
	return openLog(t, filepath.Join(t.TempDir(), "node"), store.Options{}, eventlog.Options{Now: newClock().now})
}

// clock is a deterministic time source for event times.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// originKey returns a fixed identity key, so the same origins recur across
// runs and fuzz seeds.
func originKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("p2pchat test origin " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

func idOf(key ed25519.PrivateKey) eventlog.NodeID {
	id, err := eventlog.IDFromKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		panic(err)
	}
	return id
}

// peerID is a node ID that no test signs with.
func peerID(name string) eventlog.NodeID { return idOf(originKey("peer " + name)) }

var chatEpoch = time.Date(2026, 2, 1, 9, 30, 0, 0, time.UTC)

// signedChat is a line from another node, as peering would hand it over.
func signedChat(key ed25519.PrivateKey, name string, seq uint64, text string) eventlog.Chat {
	c := eventlog.Chat{
		OriginSeq:  seq,
		OriginTime: chatEpoch.Add(time.Duration(seq) * time.Second),
		Name:       name,
		Text:       text,
	}
	c.Sign(key)
	return c
}

// chainedChat is a line from another node that chains to prev, its
// message before.
func chainedChat(key ed25519.PrivateKey, name string, seq uint64, text string, prev eventlog.Signed) eventlog.Chat {
	c := eventlog.Chat{
		OriginSeq:  seq,
		OriginTime: chatEpoch.Add(time.Duration(seq) * time.Second),
		Name:       name,
		Text:       text,
		Prev:       eventlog.ChainHash(prev),
	}
	c.Sign(key)
	return c
}

// chainedNick is a rename from another node that chains to prev.
func chainedNick(key ed25519.PrivateKey, name string, seq uint64, prev eventlog.Signed) eventlog.Nick {
	n := eventlog.Nick{
		OriginSeq:  seq,
		OriginTime: chatEpoch.Add(time.Duration(seq) * time.Second),
		Name:       name,
		Prev:       eventlog.ChainHash(prev),
	}
	n.Sign(key)
	return n
}

// signedNick is a rename from another node.
func signedNick(key ed25519.PrivateKey, name string, seq uint64) eventlog.Nick {
	n := eventlog.Nick{
		OriginSeq:  seq,
		OriginTime: chatEpoch.Add(time.Duration(seq) * time.Second),
		Name:       name,
	}
	n.Sign(key)
	return n
}

// assertClean fails the test unless Verify finds the log and its
// projection in agreement.
func assertClean(t testing.TB, l *eventlog.Log) eventlog.Report {
	t.Helper()
	rep, err := l.Verify(context.Background())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(rep.Problems) > 0 {
		t.Fatalf("Verify found %d problems:\n%s", len(rep.Problems), strings.Join(rep.Problems, "\n"))
	}
	return rep
}

// seededRand returns the random source of a randomized test, seeded from
// the environment variable env to replay a failure, and logs the seed.
func seededRand(t *testing.T, env string) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(env); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: want a number", env, s)
		}
	}
	t.Logf("seed %d (replay with %s=%d)", seed, env, seed)
	return rand.New(rand.NewPCG(seed, 1))
}

// writeSchemaOne builds a database as schema 1 wrote it: a chat index row
// per CHAT and version 1 events, n lines of alice.
func writeSchemaOne(t *testing.T, dir string, n uint64) {
	t.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	alice := originKey("alice")
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	db, err := bolt.Open(filepath.Join(dir, store.FileName), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(store.BucketMeta).Put([]byte("schema"), binary.BigEndian.AppendUint64(nil, 1)); err != nil {
			return err
		}
		for _, name := range [][]byte{eventlog.BucketEvents, eventlog.BucketChats, eventlog.BucketOrigins,
			eventlog.BucketPeers, eventlog.BucketWatermarks} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		events, index := tx.Bucket(eventlog.BucketEvents), tx.Bucket(eventlog.BucketChats)
		aliceID := idOf(alice)
		origins, err := tx.Bucket(eventlog.BucketOrigins).CreateBucket(aliceID[:])
		if err != nil {
			return err
		}
		for seq := uint64(1); seq <= n; seq++ {
			k := binary.BigEndian.AppendUint64(nil, seq)
			if err := events.Put(k, encodeChatV1(at, signedChat(alice, "Alice", seq, "line"))); err != nil {
				return err
			}
			if err := index.Put(k, nil); err != nil {
				return err
			}
			if err := origins.Put(k, binary.AppendUvarint(nil, seq)); err != nil {
				return err
			}
		}
		return tx.Bucket(eventlog.BucketWatermarks).Put(aliceID[:], binary.BigEndian.AppendUint64(nil, n))
	})
	if err != nil {
		t.Fatal(err)
	}
}
