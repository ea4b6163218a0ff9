package schedule

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/nodepod"
)

// nodeDir is a node's dir as a node pod mounts it, read-only, at
// nodepod.HostPrefix + dir.
type nodeDir struct {
	pod *nodepod.Pod
	dir string
}

// listScript prints "SIZE MTIME ./NAME" for each regular file in $1,
// links and names with a newline left out.
const listScript = `cd "$1" || exit 1
nl='
'
for f in * .[!.]* ..?*; do
	case "$f" in *"$nl"*) continue ;; esac
	[ -f "$f" ] && [ ! -h "$f" ] || continue
	stat -c '%s %Y %n' "./$f" || exit 1
done`

// List implements Store.
func (d nodeDir) List(ctx context.Context) ([]Object, error) {
	var out, errb bytes.Buffer
	if err := d.pod.Exec(ctx, []string{"sh", "-c", listScript, "list", d.path("")}, nil, &out, &errb); err != nil {
		return nil, fmt.Errorf("listing %s on node %s: %w %s", d.dir, d.pod.Node, err, strings.TrimSpace(errb.String()))
	}
	var objs []Object
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 3)
		if len(f) != 3 || !strings.HasPrefix(f[2], "./") {
			return nil, fmt.Errorf("listing %s on node %s: stat printed %q", d.dir, d.pod.Node, sc.Text())
		}
		size, err1 := strconv.ParseInt(f[0], 10, 64)
		mtime, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("listing %s on node %s: stat printed %q", d.dir, d.pod.Node, sc.Text())
		}
		objs = append(objs, Object{Name: strings.TrimPrefix(f[2], "./"), Size: size, Modified: time.Unix(mtime, 0).UTC()})
	}
	return objs, nil
}

// Open implements Store.
func (d nodeDir) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := checkObjectName(name); err != nil {
		return nil, err
	}
	return d.pod.Stream(ctx, "reading "+path.Join(d.dir, name), []string{"cat", d.path(name)}), nil
}

// SHA256 implements digester.
func (d nodeDir) SHA256(ctx context.Context, name string) (string, error) {
	if err := checkObjectName(name); err != nil {
		return "", err
	}
	return d.pod.SHA256(ctx, d.path(name))
}

func (d nodeDir) String() string { return "node:" + d.dir + " on node " + d.pod.Node }

// path is name in the dir, as the pod mounts it.
func (d nodeDir) path(name string) string { return path.Join(nodepod.HostPrefix+d.dir, name) }
