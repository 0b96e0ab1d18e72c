package graph

import (
	"encoding/xml"
	"html/template"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// now is the right edge of the test charts.
var now = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// every returns a point every step over the hour before now, valued by
// value, oldest first.
func every(step time.Duration, value func(i int) float64) []Point {
	var pts []Point
	for i, t := 0, now.Add(-time.Hour+step); !t.After(now); i, t = i+1, t.Add(step) {
		pts = append(pts, Point{Time: t, Value: value(i)})
	}
	return pts
}

// constant is a value func of one value.
func constant(v float64) func(int) float64 { return func(int) float64 { return v } }

// hourChart is a chart of the hour before now.
func hourChart(unit string, series ...Series) Chart {
	return Chart{Title: "Requests per second", Unit: unit, From: now.Add(-time.Hour), To: now, Series: series}
}

// node is an element of the SVG as encoding/xml reads it.
type node struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Text     string     `xml:",chardata"`
	Children []node     `xml:",any"`
}

func (n node) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// all returns the elements named name in n, n included, in document order.
func (n node) all(name string) []node {
	var out []node
	if n.XMLName.Local == name {
		out = append(out, n)
	}
	for _, c := range n.Children {
		out = append(out, c.all(name)...)
	}
	return out
}

// texts returns the text of each element named name in n.
func (n node) texts(name string) []string {
	var out []string
	for _, e := range n.all(name) {
		out = append(out, e.Text)
	}
	return out
}

// parse reads Line's output as XML, which proves it well-formed.
func parse(t *testing.T, h template.HTML) node {
	t.Helper()
	var root node
	if err := xml.Unmarshal([]byte(h), &root); err != nil {
		t.Fatalf("the SVG is not well-formed XML: %v\n%s", err, h)
	}
	if root.XMLName.Local != "svg" {
		t.Fatalf("root element is <%s>, want <svg>", root.XMLName.Local)
	}
	return root
}

// shape is the structure of a chart, as the tests compare it.
type shape struct {
	ariaLabel string
	paths     int   // lines drawn
	runs      []int // the points of each subpath of each line, in order
	dots      int   // points drawn alone
	yLabels   []string
	legend    []string
	empty     bool // says "no data yet"
}

func shapeOf(root node) shape {
	s := shape{ariaLabel: root.attr("aria-label")}
	for _, p := range root.all("path") {
		s.paths++
		for _, sub := range strings.Split(p.attr("d"), "M")[1:] {
			s.runs = append(s.runs, strings.Count(sub, "L")+1)
		}
	}
	s.dots = len(root.all("circle"))
	for _, g := range root.all("g") {
		switch g.attr("class") {
		case "graph-axis":
			for _, e := range g.all("text") {
				if e.attr("text-anchor") == "end" && e.Text != "now" {
					s.yLabels = append(s.yLabels, e.Text)
				}
			}
		case "graph-legend":
			s.legend = g.texts("text")
		}
	}
	s.empty = slices.Contains(root.texts("text"), "no data yet")
	return s
}

func TestLine(t *testing.T) {
	rising := func(i int) float64 { return float64(i) / 10 }
	withGap := func(i int) float64 {
		if i == 30 {
			return math.NaN()
		}
		return 5
	}
	cases := []struct {
		name  string
		chart Chart
		want  shape
	}{
		{
			name:  "one line",
			chart: hourChart("req/s", Series{Points: every(30*time.Second, rising)}),
			want: shape{
				ariaLabel: "Requests per second, last hour: latest 11.9 req/s",
				paths:     1, runs: []int{120},
				yLabels: []string{"0", "12 req/s"},
			},
		},
		{
			name: "two lines and a legend",
			chart: hourChart(UnitSeconds,
				Series{Label: "p50", Points: every(time.Minute, constant(0.012))},
				Series{Label: "p99", Points: every(time.Minute, constant(0.37))}),
			want: shape{
				ariaLabel: "Requests per second, last hour: p50 latest 12 ms, p99 latest 370 ms",
				paths:     2, runs: []int{60, 60},
				yLabels: []string{"0", "400 ms"},
				legend:  []string{"p50", "p99"},
			},
		},
		{
			name:  "a NaN breaks the line",
			chart: hourChart("req/s", Series{Points: every(time.Minute, withGap)}),
			want: shape{
				ariaLabel: "Requests per second, last hour: latest 5 req/s",
				paths:     1, runs: []int{30, 29},
				yLabels: []string{"0", "5 req/s"},
			},
		},
		{
			name: "points further apart than MaxGap are not joined",
			chart: func() Chart {
				pts := every(time.Minute, constant(2))
				pts = slices.Delete(pts, 10, 20) // ten minutes missed
				c := hourChart("req/s", Series{Points: pts})
				c.MaxGap = 2 * time.Minute
				return c
			}(),
			want: shape{
				ariaLabel: "Requests per second, last hour: latest 2 req/s",
				paths:     1, runs: []int{10, 40},
				yLabels: []string{"0", "2 req/s"},
			},
		},
		{
			name: "a point alone is a dot",
			chart: hourChart(UnitPercent, Series{Points: []Point{
				{now.Add(-2 * time.Minute), 1}, {now.Add(-time.Minute), math.NaN()}, {now, 2.5},
			}}),
			want: shape{
				ariaLabel: "Requests per second, last hour: latest 2.5%",
				paths:     1, runs: []int{1, 1}, dots: 2,
				yLabels: []string{"0", "2.5%"},
			},
		},
		{
			name: "points outside the range are left out",
			chart: hourChart("req/s", Series{Points: []Point{
				{now.Add(-2 * time.Hour), 100}, {now.Add(-time.Minute), 1}, {now, 3}, {now.Add(time.Minute), 50},
			}}),
			want: shape{
				ariaLabel: "Requests per second, last hour: latest 3 req/s",
				paths:     1, runs: []int{2},
				yLabels: []string{"0", "3 req/s"},
			},
		},
		{
			name: "negative values",
			chart: hourChart("", Series{Points: []Point{
				{now.Add(-time.Minute), -3}, {now, 9},
			}}),
			want: shape{
				ariaLabel: "Requests per second, last hour: latest 9",
				paths:     1, runs: []int{2},
				yLabels: []string{"-3", "0", "10"},
			},
		},
		{
			name: "one of two lines has no data",
			chart: hourChart(UnitBytes,
				Series{Label: "node1", Points: every(time.Minute, constant(700<<20))},
				Series{Label: "node2"}),
			want: shape{
				ariaLabel: "Requests per second, last hour: node1 latest 700 MiB, node2 no data yet",
				paths:     1, runs: []int{60},
				yLabels: []string{"0", "800 MiB"},
				legend:  []string{"node1", "node2"},
			},
		},
		{
			name:  "no series",
			chart: hourChart("req/s"),
			want:  shape{ariaLabel: "Requests per second, last hour: no data yet", empty: true},
		},
		{
			name:  "only gaps",
			chart: hourChart("req/s", Series{Points: []Point{{now, math.NaN()}, {now, math.Inf(1)}}}),
			want:  shape{ariaLabel: "Requests per second, last hour: no data yet", empty: true},
		},
		{
			name:  "no time range, no points",
			chart: Chart{Title: "Memory", Unit: UnitBytes},
			want:  shape{ariaLabel: "Memory, last hour: no data yet", empty: true},
		},
		{
			name: "the range ends at the last point when To is zero",
			chart: Chart{Unit: "req/s", Series: []Series{{Points: []Point{
				{now.Add(-2 * time.Hour), 1}, {now.Add(-30 * time.Minute), 2},
			}}}},
			want: shape{
				ariaLabel: "last hour: latest 2 req/s",
				paths:     1, runs: []int{1}, dots: 1,
				yLabels: []string{"0", "2 req/s"},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := Line(tc.chart)
			root := parse(t, h)
			for attr, want := range map[string]string{"role": "img", "width": "100%", "class": "graph"} {
				if got := root.attr(attr); got != want {
					t.Errorf("<svg %s=%q>, want %q", attr, got, want)
				}
			}
			if vb := root.attr("viewBox"); !strings.HasPrefix(vb, "0 0 400 ") {
				t.Errorf("viewBox=%q, want 0 0 400 <height>", vb)
			}
			if got := root.texts("title"); len(got) == 0 || got[0] != tc.chart.Title {
				t.Errorf("titles %q, want the first to be %q", got, tc.chart.Title)
			}
			if xs := root.all("text"); !slices.ContainsFunc(xs, func(n node) bool { return n.Text == "now" }) {
				t.Error("no x axis label says now")
			}
			got := shapeOf(root)
			if got.ariaLabel != tc.want.ariaLabel {
				t.Errorf("aria-label=%q, want %q", got.ariaLabel, tc.want.ariaLabel)
			}
			if got.paths != tc.want.paths || !slices.Equal(got.runs, tc.want.runs) || got.dots != tc.want.dots {
				t.Errorf("got %d paths of runs of %v points and %d dots, want %d of %v and %d",
					got.paths, got.runs, got.dots, tc.want.paths, tc.want.runs, tc.want.dots)
			}
			if !slices.Equal(got.yLabels, tc.want.yLabels) {
				t.Errorf("y labels %q, want %q", got.yLabels, tc.want.yLabels)
			}
			if !slices.Equal(got.legend, tc.want.legend) {
				t.Errorf("legend %q, want %q", got.legend, tc.want.legend)
			}
			if got.empty != tc.want.empty {
				t.Errorf("says no data yet: %v, want %v", got.empty, tc.want.empty)
			}
			if again := Line(tc.chart); again != h {
				t.Error("a second drawing of the same chart differs")
			}
		})
	}
}

// TestLineClasses: each line, and its swatch in the legend, has a class of
// its own for a stylesheet to color.
func TestLineClasses(t *testing.T) {
	var series []Series
	for _, l := range []string{"a", "b", "c"} {
		series = append(series, Series{Label: l, Points: every(time.Minute, constant(1))})
	}
	root := parse(t, Line(hourChart("req/s", series...)))
	for _, el := range []string{"path", "line"} {
		var got []string
		for _, n := range root.all(el) {
			if c := n.attr("class"); strings.Contains(c, "graph-s") {
				got = append(got, c)
			}
		}
		want := map[string][]string{
			"path": {"graph-line graph-s0", "graph-line graph-s1", "graph-line graph-s2"},
			"line": {"graph-swatch graph-s0", "graph-swatch graph-s1", "graph-swatch graph-s2"},
		}[el]
		if !slices.Equal(got, want) {
			t.Errorf("<%s> classes %q, want %q", el, got, want)
		}
	}
}

// TestLineEscapes: the texts of a chart are users' (app and host names)
// and come out as text, never as markup, in the legend, the tooltips, the
// title and the description.
func TestLineEscapes(t *testing.T) {
	const (
		title = `</title><script>alert("title")</script>`
		unit  = `"><img src=x onerror=alert(1)>`
		label = `<script>alert(1)</script>&amp;'`
	)
	c := Chart{
		Title: title, Unit: unit, From: now.Add(-time.Hour), To: now,
		Series: []Series{
			{Label: label, Points: every(time.Minute, constant(1))},
			{Label: "ctl\x00\x1b[31m\xff", Points: every(time.Minute, constant(2))},
		},
	}
	h := Line(c)
	for _, markup := range []string{"<script", "<img"} {
		if strings.Contains(string(h), markup) {
			t.Errorf("output holds %q unescaped:\n%s", markup, h)
		}
	}
	root := parse(t, h) // also proves the control characters gone
	if got := root.texts("title"); !slices.Equal(got, []string{title, label, "ctl  [31m\uFFFD"}) {
		t.Errorf("titles %q, want the chart's and the labels, as text", got)
	}
	if got := shapeOf(root).legend; len(got) != 2 || got[0] != label {
		// (The label is short enough not to be cut in the legend.)
		t.Errorf("legend %q, want the label %q first, as text", got, label)
	}
	if got, want := root.attr("aria-label"), title+", last hour: "+label+" latest 1 "+unit; !strings.HasPrefix(got, want) {
		t.Errorf("aria-label=%q, want it to begin %q", got, want)
	}

	// html/template embeds the chart as it is, not escaped once more.
	var b strings.Builder
	tmpl := template.Must(template.New("").Parse(`<figure>{{.}}</figure>`))
	if err := tmpl.Execute(&b, h); err != nil {
		t.Fatal(err)
	}
	if want := "<figure>" + string(h) + "</figure>"; b.String() != want {
		t.Errorf("the template changed the chart:\n got %s\nwant %s", b.String(), want)
	}
}

func TestAgo(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want string
	}{
		{0, "now"},
		{30 * time.Second, "-30s"},
		{30 * time.Minute, "-30m"},
		{time.Hour, "-60m"},
		{90 * time.Minute, "-90m"},
		{3 * time.Hour, "-3h"},
	}
	for _, tc := range cases {
		if got := ago(tc.d); got != tc.want {
			t.Errorf("ago(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestLastWords(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want string
	}{
		{45 * time.Second, "last 45 seconds"},
		{time.Minute, "last minute"},
		{15 * time.Minute, "last 15 minutes"},
		{time.Hour, "last hour"},
		{90 * time.Minute, "last 90 minutes"},
		{6 * time.Hour, "last 6 hours"},
	}
	for _, tc := range cases {
		if got := lastWords(tc.d); got != tc.want {
			t.Errorf("lastWords(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// TestLegend: a label too long for the legend is cut, and labels that do
// not fit on a row go on the next, which makes the chart taller.
func TestLegend(t *testing.T) {
	long := strings.Repeat("x", 40)
	cases := []struct {
		name       string
		labels     []string
		wantLegend []string
		wantHeight string
	}{
		{"one row", []string{"web", "worker"}, []string{"web", "worker"}, "162"},
		{"cut and wrapped", []string{long, long, "c"},
			[]string{strings.Repeat("x", maxLabel-1) + "…", strings.Repeat("x", maxLabel-1) + "…", "c"}, "178"},
		{"numbered when unlabelled", []string{"", ""}, []string{"line 1", "line 2"}, "162"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var series []Series
			for _, l := range tc.labels {
				series = append(series, Series{Label: l, Points: every(time.Minute, constant(1))})
			}
			root := parse(t, Line(hourChart("req/s", series...)))
			if got := shapeOf(root).legend; !slices.Equal(got, tc.wantLegend) {
				t.Errorf("legend %q, want %q", got, tc.wantLegend)
			}
			if got, want := root.attr("viewBox"), "0 0 400 "+tc.wantHeight; got != want {
				t.Errorf("viewBox=%q, want %q", got, want)
			}
		})
	}
}
