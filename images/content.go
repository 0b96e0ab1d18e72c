package images

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// tagLength is how many hex digits of the content hash make the tag.
const tagLength = 12

// hashInputs is what an image's tag is made from; its JSON encoding is
// hashed, so field order and names are part of the tag format.
type hashInputs struct {
	Name       string   `json:"name"`
	Debian     *Debian  `json:"debian,omitempty"`
	ParentID   string   `json:"parent_id,omitempty"`
	Packages   []string `json:"packages,omitempty"`
	Commands   []string `json:"commands,omitempty"`
	Files      []string `json:"files,omitempty"` // "dest sha256" per File
	Env        []string `json:"env,omitempty"`
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	WorkDir    string   `json:"workdir,omitempty"`
}

// rootTag is the content tag of the bare Debian root of img.
func rootTag(img Image) string {
	d := *img.Debian
	d.Packages = slices.Clone(d.Packages)
	slices.Sort(d.Packages)
	return hashJSON(hashInputs{Name: img.Name, Debian: &d, Env: img.Env, Entrypoint: img.Entrypoint, Cmd: img.Cmd, WorkDir: img.WorkDir})
}

// layerTag is the content tag of img's layer of Packages, Commands and
// Files on top of parentID.
func layerTag(img Image, parentID string) (string, error) {
	in := hashInputs{Name: img.Name, ParentID: parentID, Packages: img.Packages, Commands: img.Commands,
		Env: img.Env, Entrypoint: img.Entrypoint, Cmd: img.Cmd, WorkDir: img.WorkDir}
	for _, f := range img.Files {
		sum, err := hashFile(f)
		if err != nil {
			return "", err
		}
		in.Files = append(in.Files, f.Dest+" "+sum)
	}
	return hashJSON(in), nil
}

func hashJSON(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		// hashInputs holds only strings and slices of them.
		panic(fmt.Sprintf("images: encode hash inputs: %v", err))
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:tagLength]
}

// entry is one file of a File's tree.
type entry struct {
	rel  string // slash-separated path relative to the File's Source; "" for Source itself
	path string // path on the host
	info fs.FileInfo
	link string // symlink target
}

// walkFile calls fn for Source and everything under it (in lexical order,
// without the excluded paths).
func walkFile(f File, fn func(entry) error) error {
	root := filepath.Clean(f.Source)
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			rel = ""
		}
		if rel != "" && slices.ContainsFunc(f.Exclude, func(x string) bool { return rel == x || strings.HasPrefix(rel, x+"/") }) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		e := entry{rel: rel, path: p, info: info}
		if info.Mode()&fs.ModeSymlink != 0 {
			if e.link, err = os.Readlink(p); err != nil {
				return fmt.Errorf("read link %s: %w", p, err)
			}
		}
		return fn(e)
	})
}

// hashFile digests a File's tree: names, types, permissions, link targets
// and contents, not times or owners, which do not end up in the image.
func hashFile(f File) (string, error) {
	h := sha256.New()
	err := walkFile(f, func(e entry) error {
		mode := e.info.Mode()
		if f.Mode != 0 && e.rel == "" && mode.IsRegular() {
			mode = f.Mode
		}
		fmt.Fprintf(h, "%q %o %s\n", e.rel, uint32(mode), e.link)
		if !mode.IsRegular() {
			return nil
		}
		r, err := os.Open(e.path)
		if err != nil {
			return err
		}
		defer r.Close()
		if _, err := io.Copy(h, r); err != nil {
			return fmt.Errorf("read %s: %w", e.path, err)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", f.Source, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// contextDir is where Files live inside the build context.
const contextDir = "files"

// writeContext writes a docker build context: a Dockerfile that installs
// the packages, copies contextDir over the parent's root and sets the
// config, and the files.
func writeContext(w io.Writer, img Image, parentRef string, labels map[string]string) error {
	tw := tar.NewWriter(w)
	df := dockerfile(img, parentRef, labels)
	if err := tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(df)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := io.WriteString(tw, df); err != nil {
		return err
	}
	for _, f := range img.Files {
		dest := path.Join(contextDir, strings.TrimPrefix(path.Clean(f.Dest), "/"))
		err := walkFile(f, func(e entry) error {
			hdr, err := tar.FileInfoHeader(e.info, e.link)
			if err != nil {
				return err
			}
			hdr.Name = path.Join(dest, e.rel)
			hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "root", "root"
			if f.Mode != 0 && e.rel == "" && e.info.Mode().IsRegular() {
				hdr.Mode = int64(f.Mode)
			}
			if e.info.IsDir() {
				hdr.Name += "/"
			}
			if err := tw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("write %s to build context: %w", e.path, err)
			}
			if !e.info.Mode().IsRegular() {
				return nil
			}
			r, err := os.Open(e.path)
			if err != nil {
				return err
			}
			defer r.Close()
			if _, err := io.Copy(tw, r); err != nil {
				return fmt.Errorf("write %s to build context: %w", e.path, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// dockerfile is the recipe of img on top of parentRef. ENV and LABEL are
// each one instruction, since every instruction of the classic builder
// leaves an intermediate image behind.
func dockerfile(img Image, parentRef string, labels map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "FROM %s\n", parentRef)
	if run := runScript(img); run != "" {
		b.WriteString("RUN " + run + "\n")
	}
	if len(img.Files) > 0 {
		fmt.Fprintf(&b, "COPY %s/ /\n", contextDir)
	}
	var env, label []string
	for _, c := range configChanges(img, labels) {
		switch {
		case strings.HasPrefix(c, "ENV "):
			env = append(env, strings.TrimPrefix(c, "ENV "))
		case strings.HasPrefix(c, "LABEL "):
			label = append(label, strings.TrimPrefix(c, "LABEL "))
		default:
			b.WriteString(c + "\n")
		}
	}
	if len(env) > 0 {
		b.WriteString("ENV " + strings.Join(env, " ") + "\n")
	}
	if len(label) > 0 {
		b.WriteString("LABEL " + strings.Join(label, " ") + "\n")
	}
	return b.String()
}

// runScript is the shell command line that installs img's Packages and
// runs its Commands; "" when it has neither. The package lists and apt's
// archive are removed in the same step, so that they never reach the
// layer. dpkg skips its fsync per file (force-unsafe-io, about a tenth
// faster here): a build cut short leaves no image to be half written.
func runScript(img Image) string {
	var steps []string
	if len(img.Packages) > 0 {
		steps = append(steps,
			"apt-get update -q",
			"DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-unsafe-io "+strings.Join(img.Packages, " "),
			"apt-get clean",
			"rm -rf /var/lib/apt/lists/*")
	}
	steps = append(steps, img.Commands...)
	if len(steps) == 0 {
		return ""
	}
	return "set -e; " + strings.Join(steps, "; ")
}

// configChanges renders img's config as Dockerfile instructions, which
// `docker import --change` accepts too.
func configChanges(img Image, labels map[string]string) []string {
	var out []string
	quote := func(v any) string {
		data, _ := json.Marshal(v) // strings and []string always encode
		return string(data)
	}
	for _, kv := range img.Env {
		k, v, _ := strings.Cut(kv, "=")
		out = append(out, fmt.Sprintf("ENV %s=%s", k, quote(v)))
	}
	if img.WorkDir != "" {
		out = append(out, "WORKDIR "+img.WorkDir)
	}
	if len(img.Entrypoint) > 0 {
		out = append(out, "ENTRYPOINT "+quote(img.Entrypoint))
	}
	if len(img.Cmd) > 0 {
		out = append(out, "CMD "+quote(img.Cmd))
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = append(out, fmt.Sprintf("LABEL %s=%s", k, quote(labels[k])))
	}
	return out
}
