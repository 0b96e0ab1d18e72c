package gc

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
)

// manifest is what an images manifest (bin/images.json, which `make
// images` writes) says the current platform images are. Its format is
// package images' Manifest, which layer 0 does not import:
//
//	{"router": {"ref": "flynn/router:3f2a9c01b7de", "id": "sha256:…"}, …}
type manifest struct {
	refs map[string]string // ref → key
	ids  map[string]string // image id → key
}

// readManifest reads the manifest at path.
func readManifest(path string) (*manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read images manifest: %w", err)
	}
	var entries map[string]struct {
		Ref string `json:"ref"`
		ID  string `json:"id"`
	}
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("decode images manifest %s: %w", path, err)
	}
	m := &manifest{refs: map[string]string{}, ids: map[string]string{}}
	for key, e := range entries {
		if e.Ref != "" {
			m.refs[e.Ref] = key
		}
		if e.ID != "" {
			m.ids[e.ID] = key
		}
	}
	return m, nil
}

// names returns the key of the manifest's entry that names img (by id or
// by one of its tags); false for a nil manifest.
func (m *manifest) names(img Image) (string, bool) {
	if m == nil {
		return "", false
	}
	if key, ok := m.ids[img.ID]; ok {
		return key, true
	}
	tags := slices.Clone(img.Tags)
	slices.Sort(tags)
	for _, t := range tags {
		if key, ok := m.refs[t]; ok {
			return key, true
		}
	}
	return "", false
}
