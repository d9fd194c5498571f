package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lamina-project/lamina/internal/credentials"
	"github.com/lamina-project/lamina/internal/store"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestClusterConfigCheck(t *testing.T) {
	peers := []string{"127.0.0.1:6222", "127.0.0.1:6223"}
	for _, tc := range []struct {
		name       string
		c          ClusterConfig
		natsListen string
		want       string // "" means valid
	}{
		{"single", ClusterConfig{}, "", ""},
		{"embedded", ClusterConfig{Listen: "127.0.0.1:6222", Peers: peers}, "", ""},
		{"external", ClusterConfig{NATSURL: "nats://n1:4222", NATSUser: "u", NATSPassword: "p"}, "", ""},
		{"both", ClusterConfig{Listen: "127.0.0.1:6222", Peers: peers, NATSURL: "nats://n1:4222"}, "", "give one of them"},
		{"no peers", ClusterConfig{Listen: "127.0.0.1:6222"}, "", "needs --cluster-peers"},
		{"peers alone", ClusterConfig{Peers: peers}, "", "needs --cluster-listen"},
		{"secret alone", ClusterConfig{Secret: "s"}, "", "LAMINA_CLUSTER_SECRET"},
		{"nats-listen with external", ClusterConfig{NATSURL: "nats://n1:4222"}, "127.0.0.1:4222", "--nats-listen"},
		{"creds alone", ClusterConfig{NATSCreds: "/x.creds"}, "", "need --nats-url"},
		{"replicas alone", ClusterConfig{Replicas: 3}, "", "needs a cluster"},
		{"too many replicas", ClusterConfig{Listen: "127.0.0.1:6222", Peers: peers, Replicas: 7}, "", "1 to 5"},
		{"bad listen", ClusterConfig{Listen: "6222", Peers: peers}, "", "--cluster-listen"},
		{"bad peer", ClusterConfig{Listen: "127.0.0.1:6222", Peers: []string{"n2"}}, "", "--cluster-peers"},
		{"bad name", ClusterConfig{NodeName: "a.b"}, "", "--node-name"},
	} {
		err := tc.c.check(tc.natsListen)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}

func TestClusterReplicas(t *testing.T) {
	for _, tc := range []struct {
		listen string
		peers  []string
		want   int
	}{
		// This node listed, or not: three nodes either way.
		{"127.0.0.1:6222", []string{"127.0.0.1:6222", "127.0.0.1:6223", "127.0.0.1:6224"}, 3},
		{"127.0.0.1:6222", []string{"127.0.0.1:6223", "127.0.0.1:6224"}, 3},
		// Listening on every address: a loopback peer on its port is itself.
		{"0.0.0.0:6222", []string{"127.0.0.1:6222", "127.0.0.1:6223"}, 2},
		{"127.0.0.1:6222", []string{"127.0.0.1:6223", "127.0.0.1:6223"}, 2},
		{"127.0.0.1:6222", []string{"127.0.0.1:6223", "127.0.0.1:6224", "127.0.0.1:6225", "127.0.0.1:6226"}, 3},
	} {
		c := ClusterConfig{Listen: tc.listen, Peers: tc.peers}
		if got := c.replicas(nil); got != tc.want {
			t.Errorf("listen %s peers %v: %d replicas, want %d", tc.listen, tc.peers, got, tc.want)
		}
	}
	if got := (ClusterConfig{Listen: "127.0.0.1:6222", Peers: []string{"127.0.0.1:6223"}, Replicas: 1}).replicas(nil); got != 1 {
		t.Errorf("--replicas 1: %d", got)
	}
	if got := (ClusterConfig{}).replicas(nil); got != 1 {
		t.Errorf("a single node: %d replicas", got)
	}
}

func TestNodeName(t *testing.T) {
	dir := t.TempDir()
	made, err := nodeName(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if again, err := nodeName(dir, ""); err != nil || again != made {
		t.Fatalf("second start: %q %v, want the name kept, %q", again, err, made)
	}
	if same, err := nodeName(dir, made); err != nil || same != made {
		t.Fatalf("--node-name %s: %q %v", made, same, err)
	}
	if _, err := nodeName(dir, "other"); err == nil || !strings.Contains(err.Error(), "belongs to node") {
		t.Fatalf("another --node-name: %v, want a refusal", err)
	}
	named := t.TempDir()
	if got, err := nodeName(named, "n1"); err != nil || got != "n1" {
		t.Fatalf("--node-name n1 on a new directory: %q %v", got, err)
	}
}

// startStandalone runs an embedded single-node server on dataDir/nats with
// a stream, then stops it: the JetStream store a single node leaves.
func startStandalone(t *testing.T, natsDir string) {
	t.Helper()
	e, err := startNATS(natsOptions{storeDir: natsDir, maxStore: 1 << 30}, store.NewHealth(nil), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(e.conn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "x"}); err != nil {
		t.Fatal(err)
	}
	e.stop()
}

func TestCheckStoreMode(t *testing.T) {
	natsDir := filepath.Join(t.TempDir(), "nats")
	if err := checkStoreMode(natsDir, true); err != nil {
		t.Errorf("a new data directory may join a cluster: %v", err)
	}
	startStandalone(t, natsDir)
	if err := checkStoreMode(natsDir, false); err != nil {
		t.Errorf("a single node's store, started alone again: %v", err)
	}
	if err := checkStoreMode(natsDir, true); err == nil || !strings.Contains(err.Error(), "single node's") {
		t.Errorf("a single node's store joining a cluster: %v, want a refusal", err)
	}
	// A cluster node's store (its meta group's directory) started alone.
	clustered := filepath.Join(t.TempDir(), "nats")
	if err := os.MkdirAll(filepath.Join(clustered, "jetstream", "$SYS", "_js_", "_meta_"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := checkStoreMode(clustered, false); err == nil || !strings.Contains(err.Error(), "belongs to a cluster node") {
		t.Errorf("a cluster node's store started alone: %v, want a refusal", err)
	}
	if err := checkStoreMode(clustered, true); err != nil {
		t.Errorf("a cluster node's store started clustered: %v", err)
	}
}

// testStore opens a store on an in-process single NATS server.
func testStore(t *testing.T) *store.Store {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{JetStream: true, StoreDir: t.TempDir(), DontListen: true, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close(); ns.Shutdown(); ns.WaitForShutdown() })
	st, err := store.Open(context.Background(), nc, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

func TestClusterCredentials(t *testing.T) {
	st := testStore(t)
	ctx := context.Background()
	t.Setenv(credentials.EnvAccessKeyID, "")
	t.Setenv(credentials.EnvSecretAccessKey, "")

	// The first node has no pair: it makes the cluster's.
	first := t.TempDir()
	pair, created, err := clusterCredentials(ctx, st, first)
	if err != nil || !created {
		t.Fatalf("first node: %v created=%v", err, created)
	}
	if kept, err := credentials.Load(first); err != nil || kept != pair {
		t.Fatalf("first node keeps %+v (%v), want %+v", kept, err, pair)
	}
	// Another node with a pair of its own in its data directory takes the
	// cluster's instead.
	second := t.TempDir()
	if _, _, err := credentials.Ensure(second); err != nil {
		t.Fatal(err)
	}
	got, created, err := clusterCredentials(ctx, st, second)
	if err != nil || created || got != pair {
		t.Fatalf("second node: %+v created=%v %v, want the cluster's %+v", got, created, err, pair)
	}
	if kept, _ := credentials.Load(second); kept != pair {
		t.Fatalf("second node keeps %+v, want the cluster's", kept)
	}
	// A node given the cluster's pair by its environment starts; one given
	// another does not.
	t.Setenv(credentials.EnvAccessKeyID, pair.AccessKeyID)
	t.Setenv(credentials.EnvSecretAccessKey, pair.SecretAccessKey)
	if got, _, err := clusterCredentials(ctx, st, t.TempDir()); err != nil || got != pair {
		t.Fatalf("the cluster's pair from the environment: %+v %v", got, err)
	}
	t.Setenv(credentials.EnvAccessKeyID, "LKIAANOTHERPAIR00001")
	if _, _, err := clusterCredentials(ctx, st, t.TempDir()); err == nil || !strings.Contains(err.Error(), pair.AccessKeyID) {
		t.Fatalf("another pair from the environment: %v, want a refusal naming the cluster's key ID", err)
	}
}

func TestUntilFormed(t *testing.T) {
	log := testLogger()
	forming := &jetstream.APIError{Code: 503, ErrorCode: codeClusterUnavailable, Description: "JetStream system temporarily unavailable"}
	calls := 0
	err := untilFormed(context.Background(), log, "step", func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("an attempt without a deadline")
		}
		calls++
		if calls < 3 {
			return fmt.Errorf("store: %w", forming)
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("untilFormed: %v after %d calls, want success at the third", err, calls)
	}
	other := errors.New("bad configuration")
	calls = 0
	if err := untilFormed(context.Background(), log, "step", func(context.Context) error { calls++; return other }); !errors.Is(err, other) || calls != 1 {
		t.Fatalf("an error that is not the cluster forming: %v after %d calls, want it at once", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := untilFormed(ctx, log, "step", func(context.Context) error { return nats.ErrTimeout }); !errors.Is(err, context.Canceled) && !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("a cancelled wait: %v", err)
	}
}

// testLogger logs to the test's log when -v is given.
func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.Default()
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startEmbeddedCluster starts n embedded NATS servers clustered by routes
// on loopback, as n nodes would, and stops them when the test ends.
// secrets, when given, are the nodes' route passwords.
func startEmbeddedCluster(t *testing.T, n int, secrets ...string) []*embeddedNATS {
	t.Helper()
	routes := make([]string, n)
	for i := range routes {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		routes[i] = ln.Addr().String()
		ln.Close()
	}
	if secrets == nil {
		secrets = make([]string, n)
	}
	nodes := make([]*embeddedNATS, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			nodes[i], errs[i] = startNATS(natsOptions{storeDir: filepath.Join(t.TempDir(), "nats"), maxStore: 1 << 30, node: fmt.Sprintf("n%d", i+1),
				cluster: ClusterConfig{Listen: routes[i], Peers: routes, Secret: secrets[i]}}, store.NewHealth(nil), testLogger())
		})
	}
	wg.Wait()
	for i, e := range nodes {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		t.Cleanup(e.stop)
	}
	return nodes
}

// TestEmbeddedCluster runs three embedded NATS servers clustered by routes
// and checks how a node's store replication is chosen, and what the healer
// does to a clustered server.
func TestEmbeddedCluster(t *testing.T) {
	nodes := startEmbeddedCluster(t, 3)
	t.Run("replicas", func(t *testing.T) { testStoreReplicas(t, nodes) })
	t.Run("healer", func(t *testing.T) { testRestartJetStream(t, nodes) })
}

// TestRouteSecret checks that routes take only nodes with the cluster's
// secret.
func TestRouteSecret(t *testing.T) {
	nodes := startEmbeddedCluster(t, 3, "the-secret", "the-secret", "another-secret")
	deadline := time.Now().Add(30 * time.Second)
	for nodes[0].server.NumRoutes() == 0 || nodes[1].server.NumRoutes() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the two nodes with the same secret did not route to each other")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The routes try again every second: give the odd one a few tries.
	time.Sleep(3 * time.Second)
	if n := nodes[2].server.NumRoutes(); n != 0 {
		t.Errorf("the node with another secret has %d routes, want none", n)
	}
}

// testStoreReplicas checks that a store made with one replica is scaled up
// when a node asks for three, and never scaled down by a node asking for
// fewer.
func testStoreReplicas(t *testing.T, nodes []*embeddedNATS) {
	ctx := t.Context()
	js, err := jetstream.New(nodes[0].conn)
	if err != nil {
		t.Fatal(err)
	}
	open := func(want int) int {
		t.Helper()
		var got int
		if err := untilFormed(ctx, testLogger(), "store", func(ctx context.Context) error {
			var err error
			if got, err = storeReplicas(ctx, js, want, testLogger()); err != nil {
				return err
			}
			st, err := store.Open(ctx, nodes[0].conn, store.Options{Replicas: got})
			if err == nil {
				st.Close()
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := open(1); got != 1 {
		t.Fatalf("a new store asked for one replica got %d", got)
	}
	if got := open(3); got != 3 {
		t.Fatalf("a store of one replica asked for three got %d", got)
	}
	for _, name := range []string{"KV_lamina_functions", "OBJ_lamina_code"} {
		if r := mustReplicas(t, js, name); r != 3 {
			t.Errorf("%s has %d replicas after a node asked for three", name, r)
		}
	}
	if got := open(1); got != 3 {
		t.Fatalf("a store of three replicas asked for one got %d, want it kept at 3", got)
	}
	if r := mustReplicas(t, js, "KV_lamina_functions"); r != 3 {
		t.Errorf("a node asking for one replica scaled the store down to %d", r)
	}
}

func mustReplicas(t *testing.T, js jetstream.JetStream, stream string) int {
	t.Helper()
	s, err := js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().Config.Replicas
}

// testRestartJetStream checks what the healer does to a clustered server:
// nothing while its JetStream runs, and enabling it again after it disabled
// itself, after which its replicas take part again.
func testRestartJetStream(t *testing.T, nodes []*embeddedNATS) {
	ctx := t.Context()
	put := func(e *embeddedNATS) error {
		js, err := jetstream.New(e.conn)
		if err != nil {
			return err
		}
		kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "probe", Replicas: 3})
		if err == nil {
			_, err = kv.Put(ctx, "k", []byte("v"))
		}
		return err
	}
	if err := untilFormed(ctx, testLogger(), "probe", func(context.Context) error { return put(nodes[0]) }); err != nil {
		t.Fatal(err)
	}
	n3 := nodes[2]
	if err := n3.restartJetStream(); err != nil || !n3.server.JetStreamEnabled() {
		t.Fatalf("restartJetStream on a running clustered JetStream: %v, enabled %v", err, n3.server.JetStreamEnabled())
	}
	// The server disables JetStream when its disk is full.
	if err := n3.server.ShutdownJetStream(); err != nil {
		t.Fatal(err)
	}
	if err := n3.restartJetStream(); err != nil {
		t.Fatalf("enabling a clustered JetStream again: %v", err)
	}
	if !n3.server.JetStreamEnabled() {
		t.Fatal("JetStream is not enabled again")
	}
	// Its replica of the stream takes part again.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := put(n3)
		if err == nil {
			err = replicaCurrent(ctx, n3, "KV_probe", "n3")
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node whose JetStream was enabled again: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// replicaCurrent returns nil when node leads stream, or has a current
// replica of it.
func replicaCurrent(ctx context.Context, e *embeddedNATS, stream, node string) error {
	js, err := jetstream.New(e.conn)
	if err != nil {
		return err
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	c := s.CachedInfo().Cluster
	if c == nil {
		return errors.New("no cluster information")
	}
	if c.Leader == node {
		return nil
	}
	for _, r := range c.Replicas {
		if r.Name == node && r.Current && !r.Offline {
			return nil
		}
	}
	return fmt.Errorf("%s has no current replica of %s: %+v", node, stream, c)
}
