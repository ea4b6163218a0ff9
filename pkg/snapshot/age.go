package snapshot

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/compression"
)

// Recipients parses age recipients given on the command line and in
// recipients files (one per line, # comments), as age(1) does.
func Recipients(keys []string, files []string) ([]age.Recipient, error) {
	var out []age.Recipient
	for _, k := range keys {
		// One key, as a recipients file's line: X25519 or post-quantum.
		rs, err := age.ParseRecipients(strings.NewReader(strings.TrimSpace(k)))
		if err == nil && (len(rs) != 1 || strings.ContainsAny(k, "\n#")) {
			err = fmt.Errorf("not one key")
		}
		if err != nil {
			return nil, fmt.Errorf("--recipient %q: %w (want an age public key, age1...)", k, err)
		}
		out = append(out, rs[0])
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("--recipients-file: %w", err)
		}
		rs, err := age.ParseRecipients(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("--recipients-file %s: %w", f, err)
		}
		out = append(out, rs...)
	}
	return out, nil
}

// RecipientKeys are rs as the public keys Recipients reads: a schedule
// keeps them in its config, where its job reads them back.
func RecipientKeys(rs []age.Recipient) ([]string, error) {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		s, ok := r.(fmt.Stringer)
		if !ok {
			return nil, fmt.Errorf("an age recipient of type %T has no public key to write down", r)
		}
		out = append(out, s.String())
	}
	return out, nil
}

// Encrypter returns an Options.Encrypt function for the recipients.
func Encrypter(rs []age.Recipient) func(io.Writer) (io.WriteCloser, error) {
	return func(w io.Writer) (io.WriteCloser, error) { return age.Encrypt(w, rs...) }
}

// Identities reads age identity files (--identity).
func Identities(files []string) ([]age.Identity, error) {
	var out []age.Identity
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("--identity: %w", err)
		}
		ids, err := age.ParseIdentities(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("--identity %s: %w", f, err)
		}
		out = append(out, ids...)
	}
	return out, nil
}

// IsEncrypted tells whether r starts with an age header (binary or armored).
// It returns a reader that still yields the whole stream.
func IsEncrypted(r io.Reader) (bool, io.Reader, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(len(armor.Header))
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return false, br, err
	}
	s := string(head)
	return strings.HasPrefix(s, "age-encryption.org/") || strings.HasPrefix(s, armor.Header), br, nil
}

// Open opens a snapshot file for reading, decrypting it when it is an age
// file. Encrypted files need identities.
func Open(path string, ids []age.Identity) (io.ReadCloser, bool, error) {
	return openTee(path, ids, nil)
}

// openTee is Open, with every byte read from the file also written to
// tee when it is not nil.
func openTee(path string, ids []age.Identity, tee io.Writer) (io.ReadCloser, bool, error) {
	o, err := openFile(path, ids, tee, false)
	if err != nil {
		return nil, o.Encrypted, err
	}
	return o, o.Encrypted, nil
}

// opened is a snapshot or bundle file opened for reading: the reader is
// at the plain snapshot.
type opened struct {
	io.ReadCloser
	// Encrypted: an age file; Compressed: the snapshot is compressed, zstd
	// or s2 (inside the encryption, when both).
	Encrypted, Compressed bool
	// Bundle is a bundle's files (nil for a snapshot).
	Bundle *Bundle
}

// openFile opens a snapshot or a bundle, decrypting it when it is an age
// file and decompressing its snapshot when that is compressed; a bundle's files
// are read and checked (kept, with keep), and the reader returned is at
// the snapshot.
func openFile(path string, ids []age.Identity, tee io.Writer, keep bool) (opened, error) {
	f, err := os.Open(path)
	if err != nil {
		return opened{}, err
	}
	o, err := openStream(f, path, ids, tee, keep)
	if err != nil {
		f.Close()
		return o, err
	}
	o.ReadCloser = readCloser{o.ReadCloser, f}
	return o, nil
}

// openStream is openFile of the bytes of a file named name as they come
// from src, which it does not close. At the reader's end every byte of
// src has been read, and written to tee when it is not nil.
func openStream(src io.Reader, name string, ids []age.Identity, tee io.Writer, keep bool) (opened, error) {
	if tee != nil {
		src = io.TeeReader(src, tee)
	}
	enc, r, err := IsEncrypted(src)
	if err != nil {
		return opened{}, err
	}
	if !enc {
		plain, zipped, err := decompressed(r)
		if err != nil {
			return opened{}, fmt.Errorf("%s: %w", name, err)
		}
		// Drain what decompression leaves unread so that tee sees the
		// whole file.
		return opened{ReadCloser: io.NopCloser(io.MultiReader(plain, drain{r})), Compressed: zipped}, nil
	}
	if len(ids) == 0 {
		return opened{Encrypted: true}, fmt.Errorf("%s is encrypted with age; pass --identity with a key file that can decrypt it", name)
	}
	if strings.HasPrefix(peekString(r), armor.Header) {
		r = armor.NewReader(r)
	}
	dr, err := age.Decrypt(r, ids...)
	if err != nil {
		return opened{Encrypted: true}, fmt.Errorf("decrypting %s: %w", name, err)
	}
	plain, b, err := skipBundle(dr, keep)
	if err == nil {
		var zipped bool
		if plain, zipped, err = decompressed(plain); err == nil {
			// Drain what decryption leaves unread so that tee sees the
			// whole file.
			return opened{ReadCloser: io.NopCloser(io.MultiReader(plain, drain{dr}, drain{r})), Encrypted: true, Compressed: zipped, Bundle: b}, nil
		}
	}
	return opened{Encrypted: true}, fmt.Errorf("%s: %w", name, err)
}

// readAgeHeader reads an age file's header from r, which needs no key,
// and then the rest of r: the header's recipient stanzas are well-formed
// (its MAC, which only a key can check, is not), and its types are
// returned.
func readAgeHeader(r io.Reader) ([]string, error) {
	if strings.HasPrefix(peekString(r), armor.Header) {
		r = armor.NewReader(r)
	}
	// Decrypt parses the whole header before it asks the identities;
	// one that declines every stanza stops it there.
	_, err := age.Decrypt(r, declineAll{})
	var nomatch *age.NoIdentityMatchError
	if !errors.As(err, &nomatch) {
		return nil, fmt.Errorf("not a readable age file: %w", err)
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return nil, err
	}
	return nomatch.StanzaTypes, nil
}

// declineAll is an age identity that unwraps no stanza.
type declineAll struct{}

func (declineAll) Unwrap([]*age.Stanza) ([]byte, error) { return nil, age.ErrIncorrectIdentity }

// decompressed is r decompressed when it starts with a compressed stream
// (compression.Detect), or r as it is.
func decompressed(r io.Reader) (io.Reader, bool, error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	name, err := compression.Detect(br)
	if err != nil || name == "" {
		return br, false, err
	}
	zr, err := compression.NewReader(name, br)
	if err != nil {
		return nil, false, err
	}
	return zr, true, nil
}

// skipBundle reads a bundle's files (checked, and kept with keep) when
// the plain stream starts with them, and returns the snapshot after them;
// a plain snapshot comes back as it is, with a nil Bundle.
func skipBundle(r io.Reader, keep bool) (io.Reader, *Bundle, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if !isBundle(br) {
		return br, nil, nil
	}
	b, err := ReadBundle(br, keep)
	if err != nil {
		return nil, nil, err
	}
	return br, b, nil
}

// OpenBundle opens an encrypted bundle, its files read, checked and kept
// in memory, the returned reader at its snapshot.
func OpenBundle(path string, ids []age.Identity) (*Bundle, io.ReadCloser, error) {
	o, err := openFile(path, ids, nil, true)
	if err == nil && (!o.Encrypted || o.Bundle == nil) {
		o.Close()
		err = fmt.Errorf("%s is a snapshot, not a bundle (a bundle is written by backup --bundle, always age-encrypted)", path)
	}
	if err != nil {
		return nil, nil, err
	}
	return o.Bundle, o, nil
}

// drain reads r to its end and then reports EOF.
type drain struct{ r io.Reader }

func (d drain) Read([]byte) (int, error) {
	_, err := io.Copy(io.Discard, d.r)
	if err != nil {
		return 0, err
	}
	return 0, io.EOF
}

func peekString(r io.Reader) string {
	if br, ok := r.(*bufio.Reader); ok {
		b, _ := br.Peek(len(armor.Header))
		return string(b)
	}
	return ""
}

type readCloser struct {
	io.Reader
	c io.Closer
}

func (r readCloser) Close() error { return r.c.Close() }
