package gitreceive

import (
	"strings"
	"testing"
)

func TestNodeRangeAllows(t *testing.T) {
	for _, tc := range []struct {
		rng          string
		major, minor int
		allowed, ok  bool
	}{
		{"20.x", 20, 19, true, true},
		{"20.x", 18, 20, false, true},
		{">=20", 20, 19, true, true},
		{">=20", 18, 20, false, true},
		{">=18.17.0", 18, 20, true, true},
		{">=18.21", 18, 20, false, true},
		{"^20.3.1", 20, 19, true, true},
		{"^20.3.1", 21, 0, false, true},
		{"^0.10", 0, 10, true, true},
		{"~20.19.1", 20, 19, true, true},
		{"~20.18", 20, 19, false, true},
		{"18 || 20", 20, 19, true, true},
		{"16 - 18", 18, 20, true, true},
		{"16 - 18", 20, 19, false, true},
		{">=16 <19", 18, 20, true, true},
		{">=16 <19", 20, 19, false, true},
		{"*", 20, 19, true, true},
		{"22", 20, 19, false, true},
		{"lts/*", 20, 19, false, false},
		{">=abc", 20, 19, false, false},
	} {
		allowed, ok := nodeRangeAllows(tc.rng, tc.major, tc.minor)
		if allowed != tc.allowed || ok != tc.ok {
			t.Errorf("nodeRangeAllows(%q, %d.%d) = %v, %v; want %v, %v", tc.rng, tc.major, tc.minor, allowed, ok, tc.allowed, tc.ok)
		}
	}
}

func TestPythonVersionFile(t *testing.T) {
	for in, want := range map[string]string{
		"3.13\n":                   "3.13",
		"# pinned\n\n  3.12.4  \n": "3.12.4",
		"":                         "",
	} {
		got, ok := pythonVersionFile(in)
		if got != want || ok != (want != "") {
			t.Errorf("pythonVersionFile(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestStackImagesFlags(t *testing.T) {
	got, err := stackImages([]string{"flynn-trixie=b:1"}, []string{"flynn-trixie=r:1"})
	if err != nil || got["flynn-trixie"] != (StackImages{Slugbuilder: "b:1", Slugrunner: "r:1"}) {
		t.Fatalf("stackImages = %v, %v", got, err)
	}
	for _, tc := range []struct {
		builders, runners []string
		want              string
	}{
		{[]string{"flynn-trixie=b:1"}, nil, "needs both"},
		{[]string{"flynn-bookworm=b:1"}, []string{"flynn-bookworm=r:1"}, "not a stack other than the default"},
		{[]string{"heroku-24=b"}, []string{"heroku-24=r"}, "not a stack other than the default"},
		{[]string{"flynn-trixie"}, []string{"flynn-trixie=r"}, "want NAME=IMAGE"},
	} {
		if _, err := stackImages(tc.builders, tc.runners); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("stackImages(%v, %v) = %v, want an error with %q", tc.builders, tc.runners, err, tc.want)
		}
	}
}
