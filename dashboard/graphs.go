package dashboard

import (
	"html/template"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/dashboard/graph"
)

// graphView is one chart of a page.
type graphView struct {
	Title string
	SVG   template.HTML
}

// readingInterval is the time between two readings when their clock does
// not tell (history samples every 30 s by default).
const readingInterval = 30 * time.Second

// maxGap is the longest time between readings that a line joins: more is
// readings missed, drawn as a gap.
const maxGap = 3 * readingInterval

// appGraphs are the app's request rate, error rate and p99 latency over
// the last hour, from the routers' totals the recorder read: each point
// is what happened between two readings.
func (s *Server) appGraphs(appID string) []graphView {
	if s.cfg.Readings == nil {
		return nil
	}
	readings := s.cfg.Readings.AppReadings(appID)
	var rate, errs, p99 []graph.Point
	for i := 1; i < len(readings); i++ {
		at := readings[i].Time
		w, err := controller.MetricsBetween(readings[i-1], readings[i], readingInterval)
		if err != nil {
			// A router restarted or left: the differences say nothing.
			gap := graph.Point{Time: at, Value: math.NaN()}
			rate, errs, p99 = append(rate, gap), append(errs, gap), append(p99, gap)
			continue
		}
		rate = append(rate, graph.Point{Time: at, Value: w.RequestsPerSecond})
		e, l := 0.0, math.NaN()
		if w.ErrorPercent != nil {
			e = *w.ErrorPercent
		}
		if w.P99 != nil {
			l = *w.P99
		}
		errs = append(errs, graph.Point{Time: at, Value: e})
		p99 = append(p99, graph.Point{Time: at, Value: l})
	}
	now := s.cfg.Now()
	chart := func(title, unit string, points []graph.Point) graphView {
		return graphView{Title: title, SVG: graph.Line(graph.Chart{Title: title, Unit: unit, From: now.Add(-time.Hour), To: now, MaxGap: maxGap,
			Series: []graph.Series{{Points: points}}})}
	}
	return []graphView{
		chart("Requests per second", "req/s", rate),
		chart("Errors (5xx), % of requests", graph.UnitPercent, errs),
		chart("p99 latency", graph.UnitSeconds, p99),
	}
}

// hostGraphs are the CPU and memory of each node's jobs over the last
// hour, a line per node.
func (s *Server) hostGraphs() []graphView {
	if s.cfg.Readings == nil {
		return nil
	}
	cpu, mem := map[string][]graph.Point{}, map[string][]graph.Point{}
	for _, r := range s.cfg.Readings.HostReadings() {
		for _, h := range r.Hosts {
			c, m := math.NaN(), math.NaN()
			if h.Stats != nil {
				c, m = h.Stats.CPUPercent, float64(h.Stats.MemoryBytes)
			}
			cpu[h.ID] = append(cpu[h.ID], graph.Point{Time: r.Time, Value: c})
			mem[h.ID] = append(mem[h.ID], graph.Point{Time: r.Time, Value: m})
		}
	}
	series := func(by map[string][]graph.Point) []graph.Series {
		var out []graph.Series
		for _, id := range slices.Sorted(maps.Keys(by)) {
			out = append(out, graph.Series{Label: id, Points: by[id]})
		}
		return out
	}
	now := s.cfg.Now()
	return []graphView{
		{Title: "CPU of each node's jobs (% of one CPU)", SVG: graph.Line(graph.Chart{Title: "CPU of each node's jobs, % of one CPU", Unit: graph.UnitPercent, From: now.Add(-time.Hour), To: now, MaxGap: maxGap, Series: series(cpu)})},
		{Title: "Memory of each node's jobs", SVG: graph.Line(graph.Chart{Title: "Memory of each node's jobs", Unit: graph.UnitBytes, From: now.Add(-time.Hour), To: now, MaxGap: maxGap, Series: series(mem)})},
	}
}
