package stacks

import "testing"

func TestLookupAndDefault(t *testing.T) {
	all := All()
	if len(all) == 0 || all[0].Name != Default {
		t.Fatalf("All() = %v, want the default %s first", all, Default)
	}
	seen := map[string]bool{}
	for _, s := range all {
		if seen[s.Name] {
			t.Errorf("stack %s listed twice", s.Name)
		}
		seen[s.Name] = true
		got, ok := Lookup(s.Name)
		if !ok || got != s {
			t.Errorf("Lookup(%q) = %v, %v", s.Name, got, ok)
		}
		if (s.Name == Default) != (s.ImageSuffix == "") {
			t.Errorf("stack %s: only the default stack has no image suffix", s.Name)
		}
		if _, _, ok := MajorMinor(s.Python); !ok {
			t.Errorf("stack %s: Python %q is not major.minor", s.Name, s.Python)
		}
		if _, _, ok := MajorMinor(s.Node); !ok {
			t.Errorf("stack %s: Node %q is not major.minor", s.Name, s.Node)
		}
	}
	if _, ok := Lookup("heroku-24"); ok {
		t.Error("Lookup found a stack that is not built")
	}
	all[0].Name = "changed"
	if All()[0].Name != Default {
		t.Error("All() shares its slice with the caller")
	}
}

func TestMajorMinor(t *testing.T) {
	for _, tc := range []struct {
		in           string
		major, minor int
		ok           bool
	}{
		{"3.12", 3, 12, true},
		{"3.12.4", 3, 12, true},
		{" v20.1.0 ", 20, 1, true},
		{"3", 0, 0, false},
		{"3.x", 0, 0, false},
		{"", 0, 0, false},
		{"-1.2", 0, 0, false},
	} {
		major, minor, ok := MajorMinor(tc.in)
		if major != tc.major || minor != tc.minor || ok != tc.ok {
			t.Errorf("MajorMinor(%q) = %d, %d, %v; want %d, %d, %v", tc.in, major, minor, ok, tc.major, tc.minor, tc.ok)
		}
	}
}
