package agent

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/agentapi"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/manifest"
)

// SurveyEnv is how a survey reaches the node.
type SurveyEnv struct {
	Root   string
	Dialer Dialer
	HTTP   HTTPDoer
	Node   string
	Now    func() time.Time
}

// TakeSurvey reads this node's etcd offline, for a quorum-loss recovery:
// its manifest, its WAL (the last hard state and entry), its database
// (consistent index, revision, membership) or, while a running etcd
// holds the database, its metrics. It changes nothing.
func TakeSurvey(ctx context.Context, env SurveyEnv, staticPodDir string) (*agentapi.Survey, error) {
	src, err := os.ReadFile(under(env.Root, path.Join(staticPodDir, agentapi.EtcdManifest)))
	if err != nil {
		return nil, fmt.Errorf("read etcd's manifest: %w: run the survey on a control-plane node; if etcd's manifest was moved out of %s, put it back (etcd may crash-loop meanwhile)", err, staticPodDir)
	}
	m, err := manifest.ReadMember(src)
	if err != nil {
		return nil, err
	}
	s := &agentapi.Survey{Kind: agentapi.SurveyKind, Node: env.Node, Taken: env.Now().UTC(), Member: m.Name, Image: m.Image,
		DataDir: path.Clean(m.DataDir), PeerURLs: m.InitialAdvertisePeerURLs}
	if v, ok, _ := manifest.Flag(src, "advertise-client-urls"); ok {
		s.ClientURL = strings.Split(v, ",")[0]
	}
	addrs, metricsURL, err := etcdAddrs(m)
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if PortOpen(env.Dialer, a)(ctx) == nil {
			s.EtcdRunning = true
		}
	}
	if s.EtcdRunning {
		if err := EtcdHealthy(env.HTTP, metricsURL)(ctx); err != nil {
			s.HealthError = err.Error()
		} else {
			s.Healthy = true
		}
	}
	walDir := path.Join(s.DataDir, "member", "wal")
	if m.WALDir != "" {
		walDir = path.Clean(m.WALDir)
	}
	w, err := readWAL(under(env.Root, walDir))
	if errors.Is(err, os.ErrNotExist) {
		s.NoData = "no WAL in " + walDir + ": this member's data is gone"
		return s, nil
	}
	if err != nil {
		s.NoData = "the WAL cannot be read: " + err.Error()
		return s, nil
	}
	s.WAL, s.MemberID, s.ClusterID = &w.WALState, hexID(w.memberID), hexID(w.clusterID)
	s.Backend, s.Members = readBackend(under(env.Root, path.Join(s.DataDir, "member", "snap", "db")))
	if s.Backend.Error != "" && s.EtcdRunning {
		if b, err := backendFromMetrics(ctx, env.HTTP, metricsURL); err == nil {
			b.Error = s.Backend.Error
			s.Backend = b
		}
	}
	return s, nil
}

// readBackend reads the database's meta and members buckets and its last
// revision. A running etcd holds the file's lock: that is said, not
// waited for.
func readBackend(file string) (*agentapi.BackendState, []agentapi.SurveyMember) {
	b := &agentapi.BackendState{From: "db"}
	st, err := os.Stat(file)
	if err != nil {
		b.Error = err.Error()
		return b, nil
	}
	b.SizeBytes = st.Size()
	db, err := bolt.Open(file, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			err = errors.New("the running etcd holds the database")
		}
		b.Error = err.Error()
		return b, nil
	}
	defer db.Close()
	var members []agentapi.SurveyMember
	err = db.View(func(tx *bolt.Tx) error {
		if meta := tx.Bucket([]byte("meta")); meta != nil {
			if v := meta.Get([]byte("consistent_index")); len(v) == 8 {
				b.ConsistentIndex = binary.BigEndian.Uint64(v)
			}
			if v := meta.Get([]byte("term")); len(v) == 8 {
				b.Term = binary.BigEndian.Uint64(v)
			}
			if v := meta.Get([]byte("finishedCompactRev")); len(v) >= 8 {
				b.CompactRevision = int64(binary.BigEndian.Uint64(v[:8]))
			}
		}
		if keys := tx.Bucket([]byte("key")); keys != nil {
			if k, _ := keys.Cursor().Last(); len(k) >= 8 {
				b.Revision = int64(binary.BigEndian.Uint64(k[:8]))
			}
		}
		b.Revision = max(b.Revision, b.CompactRevision)
		if mb := tx.Bucket([]byte("members")); mb != nil {
			return mb.ForEach(func(k, v []byte) error {
				var m struct {
					ID        uint64   `json:"id"`
					Name      string   `json:"name"`
					PeerURLs  []string `json:"peerURLs"`
					IsLearner bool     `json:"isLearner"`
				}
				if err := json.Unmarshal(v, &m); err != nil {
					return fmt.Errorf("member %s: %w", k, err)
				}
				members = append(members, agentapi.SurveyMember{ID: hexID(m.ID), Name: m.Name, PeerURLs: m.PeerURLs, IsLearner: m.IsLearner})
				return nil
			})
		}
		return nil
	})
	if err != nil {
		b.Error = err.Error()
	}
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	return b, members
}

// backendFromMetrics reads the applied index and the revision from a
// running etcd's metrics, which it serves without a quorum.
func backendFromMetrics(ctx context.Context, c HTTPDoer, metricsURL string) (*agentapi.BackendState, error) {
	vals, err := scrape(ctx, c, metricsURL, "etcd_server_proposals_applied_total", "etcd_debugging_mvcc_current_revision", "etcd_mvcc_db_total_size_in_bytes")
	if err != nil {
		return nil, err
	}
	return &agentapi.BackendState{From: "metrics", ConsistentIndex: uint64(vals[0]), Revision: int64(vals[1]), SizeBytes: int64(vals[2])}, nil
}

// scrape reads the values of unlabelled metrics from metricsURL/metrics.
func scrape(ctx context.Context, c HTTPDoer, metricsURL string, names ...string) ([]float64, error) {
	url := strings.TrimSuffix(metricsURL, "/") + "/metrics"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	out := make([]float64, len(names))
	found := 0
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		for i, n := range names {
			if name == n {
				if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
					out[i] = v
					found++
				}
			}
		}
	}
	if found == 0 {
		return nil, fmt.Errorf("GET %s: none of %s", url, strings.Join(names, ", "))
	}
	return out, sc.Err()
}
