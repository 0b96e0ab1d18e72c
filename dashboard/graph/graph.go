// Package graph draws line charts on the server, as inline SVG, for pages
// that must work without JavaScript, without the internet and on a phone.
// Line returns markup that html/template embeds as it is, that scales to
// the width of its container (down to 375 px), and that a screen reader
// reads as one sentence: the chart's title and the latest value of each
// line.
//
// Every text that goes into a chart (title, labels, unit) is escaped
// here: app and host names are their users' to choose. Colors are left to
// the page where it wants them: text and grid lines are currentColor, and
// each line has the classes graph-line and graph-s<i> (i its index) with
// a default color that a stylesheet overrides.
package graph

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// DefaultSpan is the time a chart shows when Chart.From does not say.
const DefaultSpan = time.Hour

// Point is the value of a series at a time.
type Point struct {
	// Time is when the value held: where it goes across.
	Time time.Time
	// Value is in the chart's unit. NaN (or an infinity) is a gap: the
	// line stops before it and starts again after.
	Value float64
}

// Series is one line of a chart.
type Series struct {
	// Label names the line in the legend, its tooltip and the chart's
	// description; a chart of one line may leave it empty.
	Label string
	// Points are the line's values, oldest first. Those outside the
	// chart's time range are not drawn.
	Points []Point
}

// Chart is a line chart of series over a time range.
type Chart struct {
	// Title says what the chart shows ("Requests per second"). It is the
	// SVG's title and begins its description; the chart does not draw
	// it, as the page shows it as a heading.
	Title string
	// Unit is the values' unit: UnitSeconds, UnitBytes, UnitPercent, or
	// any other, written after the numbers ("req/s"); see FormatValue.
	Unit string
	// From and To are the time range the x axis shows, labelled back
	// from To ("-30m", "now"), so To is normally the time of the page.
	// When To is zero, it is the last point's time; when From is zero or
	// not before To, it is DefaultSpan before To.
	From, To time.Time
	// MaxGap, when set, is the longest time between two points that the
	// line joins; a longer one, as when readings were missed, is drawn
	// as a gap. Zero joins all the points.
	MaxGap time.Duration
	// Series are the lines, drawn in order, each in its own color. A
	// legend names them when there is more than one.
	Series []Series
}

// The layout, in the units of the viewBox, which the SVG scales to its
// container's width. 400 wide keeps text of fontSize legible on a 375 px
// phone, where it shrinks a little; on a wide page the stylesheet caps the
// chart's width if it grows too large.
const (
	width      = 400.0
	fontSize   = 11.0
	charWidth  = 6.2 // an estimate of a character's width at fontSize: text is laid out without measuring it
	pad        = 6.0
	plotTop    = 10.0 // room above the top grid line for half of its label
	plotHeight = 112.0
	xLabelY    = plotTop + plotHeight + 15 // the baseline of the x axis's labels
	bodyHeight = xLabelY + 5
	legendRow  = 16.0
	maxLabel   = 32 // runes of a series' label in the legend
)

// palette are the lines' default colors (Okabe and Ito's, which people
// with the common color blindnesses tell apart), in the order of the
// series.
var palette = [...]string{"#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9"}

// Line draws c as an inline <svg> element. Drawing never fails: a chart
// without any point to draw says "no data yet".
func Line(c Chart) template.HTML {
	p := newPlot(c)
	var b strings.Builder
	legend, height := p.legend()
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="graph" viewBox="0 0 %s %s" width="100%%" role="img" aria-label="%s" font-size="%s" fill="currentColor">`,
		num(width), num(height), esc(p.describe()), num(fontSize))
	fmt.Fprintf(&b, `<title>%s</title>`, esc(c.Title))
	p.axes(&b)
	if p.empty {
		fmt.Fprintf(&b, `<text class="graph-empty" x="%s" y="%s" text-anchor="middle">no data yet</text>`,
			num(width/2), num(plotTop+plotHeight/2))
	}
	for i, s := range c.Series {
		p.line(&b, i, s)
	}
	b.WriteString(legend)
	b.WriteString(`</svg>`)
	// Safe: every text above went through esc, every number through num.
	return template.HTML(b.String())
}

// plot is a chart laid out: its time and value ranges, and where they go.
type plot struct {
	c           Chart
	from, to    time.Time
	span        time.Duration // to - from, never zero
	empty       bool          // no point to draw
	bottom, top float64       // the y axis's range of values
	yValues     []float64     // the values of the labelled grid lines
	yLabels     []string      // their labels
	left, right float64       // the plot area's edges in the viewBox
	latest      []float64     // each series' last value drawn; NaN for none
}

// newPlot works out c's ranges and layout.
func newPlot(c Chart) *plot {
	p := &plot{c: c, from: c.From, to: c.To}
	if p.to.IsZero() {
		for _, s := range c.Series {
			for _, pt := range s.Points {
				if pt.Time.After(p.to) {
					p.to = pt.Time
				}
			}
		}
	}
	if p.from.IsZero() || !p.from.Before(p.to) {
		p.from = p.to.Add(-DefaultSpan)
	}
	p.span = p.to.Sub(p.from)

	lo, hi := math.Inf(1), math.Inf(-1)
	p.latest = make([]float64, len(c.Series))
	for i, s := range c.Series {
		p.latest[i] = math.NaN()
		for _, pt := range s.Points {
			if !p.drawn(pt) {
				continue
			}
			lo, hi = min(lo, pt.Value), max(hi, pt.Value)
			p.latest[i] = pt.Value
		}
	}
	p.empty = math.IsInf(lo, 1)
	p.left, p.right = pad, width-pad
	if p.empty {
		return p
	}
	p.bottom, p.top = yRange(lo, hi, c.Unit)
	for _, v := range []float64{p.bottom, 0, p.top} {
		if len(p.yValues) > 0 && v == p.yValues[len(p.yValues)-1] {
			continue // bottom is 0 unless some value is negative
		}
		label := "0"
		if v != 0 {
			label = FormatValue(v, c.Unit)
		}
		p.yValues = append(p.yValues, v)
		p.yLabels = append(p.yLabels, label)
	}
	widest := 0
	for _, l := range p.yLabels {
		widest = max(widest, utf8.RuneCountInString(l))
	}
	p.left = pad + float64(widest)*charWidth + 4
	return p
}

// drawn reports whether pt is drawn: a number, within the time range.
func (p *plot) drawn(pt Point) bool {
	return !math.IsNaN(pt.Value) && !math.IsInf(pt.Value, 0) &&
		!pt.Time.Before(p.from) && !pt.Time.After(p.to)
}

// x is where time t goes across.
func (p *plot) x(t time.Time) float64 {
	return p.left + (p.right-p.left)*float64(t.Sub(p.from))/float64(p.span)
}

// y is where value v goes up.
func (p *plot) y(v float64) float64 {
	return plotTop + plotHeight*(p.top-v)/(p.top-p.bottom)
}

// axes draws the grid lines with the y axis's labels, and the x axis's
// labels.
func (p *plot) axes(b *strings.Builder) {
	b.WriteString(`<g class="graph-grid" stroke="currentColor" stroke-opacity="0.25">`)
	if p.empty {
		line(b, p.left, plotTop+plotHeight, p.right, plotTop+plotHeight, "")
	}
	for _, v := range p.yValues {
		line(b, p.left, p.y(v), p.right, p.y(v), "")
	}
	if !p.empty {
		// Halfway up, unlabelled: enough to read a value roughly.
		line(b, p.left, p.y(p.top/2), p.right, p.y(p.top/2), `stroke-dasharray="2 3"`)
	}
	b.WriteString(`</g><g class="graph-axis">`)
	for i, v := range p.yValues {
		fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="end">%s</text>`,
			num(p.left-4), num(p.y(v)+fontSize/3), esc(p.yLabels[i]))
	}
	for _, l := range []struct {
		x      float64
		ago    time.Duration
		anchor string
	}{
		{p.left, p.span, "start"},
		{(p.left + p.right) / 2, p.span / 2, "middle"},
		{p.right, 0, "end"},
	} {
		fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="%s">%s</text>`,
			num(l.x), num(xLabelY), l.anchor, esc(ago(l.ago)))
	}
	b.WriteString(`</g>`)
}

// line draws series s, the i-th of the chart: one path, whose subpaths
// the gaps separate, and a dot for each point that has no neighbour to
// join, which a path would not show.
func (p *plot) line(b *strings.Builder, i int, s Series) {
	var d strings.Builder
	var dots []Point
	var run []Point // the points joined since the last gap
	end := func() {
		if len(run) == 1 {
			dots = append(dots, run[0])
		}
		for j, pt := range run {
			cmd := "L"
			if j == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&d, "%s%s,%s", cmd, num(p.x(pt.Time)), num(p.y(pt.Value)))
		}
		run = run[:0]
	}
	for _, pt := range s.Points {
		switch {
		case math.IsNaN(pt.Value) || math.IsInf(pt.Value, 0):
			end()
		case !p.drawn(pt):
			// Outside the time range: neither drawn nor a gap.
		default:
			if n := len(run); n > 0 && p.c.MaxGap > 0 && pt.Time.Sub(run[n-1].Time) > p.c.MaxGap {
				end()
			}
			run = append(run, pt)
		}
	}
	end()
	if d.Len() == 0 {
		return
	}
	class := fmt.Sprintf("graph-s%d", i)
	color := palette[i%len(palette)]
	fmt.Fprintf(b, `<path class="graph-line %s" d="%s" fill="none" stroke="%s" stroke-width="2" stroke-linejoin="round" stroke-linecap="round" vector-effect="non-scaling-stroke">`,
		class, d.String(), color)
	if s.Label != "" {
		fmt.Fprintf(b, `<title>%s</title>`, esc(s.Label))
	}
	b.WriteString(`</path>`)
	for _, pt := range dots {
		fmt.Fprintf(b, `<circle class="graph-dot %s" cx="%s" cy="%s" r="2.5" fill="%s"/>`,
			class, num(p.x(pt.Time)), num(p.y(pt.Value)), color)
	}
}

// legend lays out the names of the series, when there is more than one,
// and returns them with the chart's height, which grows a row of text for
// each row of the legend.
func (p *plot) legend() (string, float64) {
	if len(p.c.Series) < 2 {
		return "", bodyHeight
	}
	var b strings.Builder
	b.WriteString(`<g class="graph-legend">`)
	x, row := pad, 0
	for i, s := range p.c.Series {
		label := legendLabel(s.Label, i)
		w := 16 + float64(utf8.RuneCountInString(label))*charWidth + 12
		if x > pad && x+w > width-pad {
			x, row = pad, row+1
		}
		y := bodyHeight + legendRow*float64(row) + fontSize
		fmt.Fprintf(&b, `<line class="graph-swatch graph-s%d" x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="3"/>`,
			i, num(x), num(y-fontSize/3), num(x+12), num(y-fontSize/3), palette[i%len(palette)])
		fmt.Fprintf(&b, `<text x="%s" y="%s">%s</text>`, num(x+16), num(y), esc(label))
		x += w
	}
	b.WriteString(`</g>`)
	return b.String(), bodyHeight + legendRow*float64(row+1) + 4
}

// seriesName names the i-th series: by its label, or its number.
func seriesName(label string, i int) string {
	if label = clean(label); label == "" {
		return "line " + strconv.Itoa(i+1)
	}
	return label
}

// legendLabel is the name of the i-th series in the legend, cut to
// maxLabel runes, as the legend has one line for it at most.
func legendLabel(label string, i int) string {
	label = seriesName(label, i)
	if r := []rune(label); len(r) > maxLabel {
		return string(r[:maxLabel-1]) + "…"
	}
	return label
}

// describe says what the chart shows in words, for screen readers: its
// title and time range, and each line's latest value.
func (p *plot) describe() string {
	var b strings.Builder
	if p.c.Title != "" {
		b.WriteString(p.c.Title + ", ")
	}
	b.WriteString(lastWords(p.span) + ": ")
	if p.empty {
		b.WriteString("no data yet")
		return b.String()
	}
	for i, s := range p.c.Series {
		if i > 0 {
			b.WriteString(", ")
		}
		if len(p.c.Series) > 1 {
			b.WriteString(seriesName(s.Label, i) + " ")
		}
		if math.IsNaN(p.latest[i]) {
			b.WriteString("no data yet")
		} else {
			b.WriteString("latest " + FormatValue(p.latest[i], p.c.Unit))
		}
	}
	return b.String()
}

// lastWords names a time range that ends now: "last hour", "last 15
// minutes".
func lastWords(d time.Duration) string {
	switch {
	case d == time.Hour:
		return "last hour"
	case d > time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("last %d hours", d/time.Hour)
	case d >= 2*time.Minute:
		return fmt.Sprintf("last %d minutes", d.Round(time.Minute)/time.Minute)
	case d >= time.Minute:
		return "last minute"
	}
	return fmt.Sprintf("last %d seconds", d.Round(time.Second)/time.Second)
}

// ago labels the x axis at d before its end: "now", "-30m", "-6h".
func ago(d time.Duration) string {
	switch {
	case d <= 0:
		return "now"
	case d >= 2*time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("-%dh", d/time.Hour)
	case d >= time.Minute:
		return fmt.Sprintf("-%dm", d.Round(time.Minute)/time.Minute)
	}
	return fmt.Sprintf("-%ds", d.Round(time.Second)/time.Second)
}

// line writes a grid line from (x1, y1) to (x2, y2), with extra
// attributes.
func line(b *strings.Builder, x1, y1, x2, y2 float64, attrs string) {
	if attrs != "" {
		attrs = " " + attrs
	}
	fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s"%s/>`, num(x1), num(y1), num(x2), num(y2), attrs)
}

// num formats a coordinate to a tenth of a unit, which no screen shows
// finer, without a trailing ".0".
func num(v float64) string {
	return strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0")
}

// esc makes s safe as the text of an element or a quoted attribute, in
// HTML and in XML.
func esc(s string) string {
	return html.EscapeString(clean(s))
}

// clean replaces what XML forbids in text and what would break a line of
// the layout: invalid UTF-8 and control characters.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}
