// Command mkimage builds a single-layer linux/amd64 container image from
// local files and writes it as a docker-archive tarball (for
// `ctr images import`). The output is reproducible: every timestamp is the
// Unix epoch.
//
//	mkimage -o out.tar -tag registry.k8s.io/etcd:3.6.8-0 \
//	  -file /path/etcd:/usr/local/bin/etcd \
//	  -link busybox:/bin/sh -dir /tmp:1777 \
//	  -entrypoint /pause -user 65535:65535 -env PATH=/usr/local/bin:/bin
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

type entry struct {
	hdr tar.Header
	src string // file to copy, for regular files
}

func main() {
	var files, links, dirs, envs, entrypoint, cmd list
	out := flag.String("o", "", "output docker-archive tarball")
	tag := flag.String("tag", "", "image reference, e.g. registry.k8s.io/pause:3.10")
	user := flag.String("user", "", "image user, e.g. 65535:65535")
	workdir := flag.String("workdir", "/", "working directory")
	flag.Var(&files, "file", "SRC:DST[:MODE] regular file (repeatable)")
	flag.Var(&links, "link", "TARGET:LINKNAME symlink (repeatable)")
	flag.Var(&dirs, "dir", "PATH[:MODE] directory (repeatable)")
	flag.Var(&envs, "env", "KEY=VALUE (repeatable)")
	flag.Var(&entrypoint, "entrypoint", "entrypoint word (repeatable)")
	flag.Var(&cmd, "cmd", "cmd word (repeatable)")
	flag.Parse()
	if *out == "" || *tag == "" {
		fail("-o and -tag are required")
	}

	entries := map[string]*entry{}
	addDir := func(p string, mode int64) {
		p = strings.TrimPrefix(path.Clean(p), "/")
		if p == "" || p == "." {
			return
		}
		if _, ok := entries[p]; !ok {
			entries[p] = &entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: mode}}
		}
	}
	addParents := func(p string) {
		for d := path.Dir(p); d != "/" && d != "."; d = path.Dir(d) {
			addDir(d, 0o755)
		}
	}
	for _, d := range dirs {
		p, m := splitMode(d, 0o755)
		addParents(p)
		addDir(p, m)
	}
	for _, f := range files {
		parts := strings.SplitN(f, ":", 3)
		if len(parts) < 2 {
			fail("bad -file %q", f)
		}
		st, err := os.Stat(parts[0])
		if err != nil {
			fail("%v", err)
		}
		mode := int64(st.Mode().Perm())
		if len(parts) == 3 {
			m, err := strconv.ParseInt(parts[2], 8, 64)
			if err != nil {
				fail("bad mode in %q", f)
			}
			mode = m
		}
		addParents(parts[1])
		p := strings.TrimPrefix(path.Clean(parts[1]), "/")
		entries[p] = &entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode, Size: st.Size()}, src: parts[0]}
	}
	for _, l := range links {
		parts := strings.SplitN(l, ":", 2)
		if len(parts) != 2 {
			fail("bad -link %q", l)
		}
		addParents(parts[1])
		p := strings.TrimPrefix(path.Clean(parts[1]), "/")
		entries[p] = &entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: p, Linkname: parts[0], Mode: 0o777}}
	}

	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0).UTC()
	for _, n := range names {
		e := entries[n]
		e.hdr.ModTime, e.hdr.Format = epoch, tar.FormatPAX
		if err := tw.WriteHeader(&e.hdr); err != nil {
			fail("%v", err)
		}
		if e.src != "" {
			f, err := os.Open(e.src)
			if err != nil {
				fail("%v", err)
			}
			if _, err := io.Copy(tw, f); err != nil {
				fail("%v", err)
			}
			f.Close()
		}
	}
	if err := tw.Close(); err != nil {
		fail("%v", err)
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	})
	if err != nil {
		fail("%v", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		fail("%v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		fail("%v", err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Created = v1.Time{Time: epoch}
	cf.Config.Env = envs
	cf.Config.Entrypoint = entrypoint
	cf.Config.Cmd = cmd
	cf.Config.User = *user
	cf.Config.WorkingDir = *workdir
	cf.History = []v1.History{{Created: v1.Time{Time: epoch}, CreatedBy: "hack/cluster/tools/mkimage"}}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		fail("%v", err)
	}
	ref, err := name.NewTag(*tag, name.WeakValidation)
	if err != nil {
		fail("%v", err)
	}
	tmp := *out + ".part"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		fail("%v", err)
	}
	if err := os.Rename(tmp, *out); err != nil {
		fail("%v", err)
	}
}

func splitMode(s string, def int64) (string, int64) {
	if i := strings.LastIndex(s, ":"); i > 0 {
		m, err := strconv.ParseInt(s[i+1:], 8, 64)
		if err == nil {
			return s[:i], m
		}
	}
	return s, def
}

func fail(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "mkimage: "+f+"\n", a...)
	os.Exit(1)
}
