package main

import (
	"image/color"
	"os"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

var (
	colorThroughput = color.RGBA{R: 0x2b, G: 0x6c, B: 0xb0, A: 0xff}
	colorP50        = color.RGBA{R: 0x4c, G: 0xaf, B: 0x50, A: 0xff}
	colorP99        = color.RGBA{R: 0xff, G: 0x98, B: 0x00, A: 0xff}
	colorP999       = color.RGBA{R: 0xe5, G: 0x39, B: 0x35, A: 0xff}
)

// plot renders throughput (top) and latency percentiles (bottom) per
// scenario that ran into a PNG.
func (r *report) plot(path string) error {
	var names []string
	var rps, p50, p99, p999 plotter.Values
	for _, s := range r.Scenarios {
		if s.Skipped != "" {
			continue
		}
		names = append(names, s.Name)
		rps = append(rps, s.RPS)
		p50 = append(p50, s.P50)
		p99 = append(p99, s.P99)
		p999 = append(p999, s.P999)
	}
	if len(names) == 0 {
		return nil
	}
	top := plot.New()
	top.Title.Text = "Throughput (req/s, median of " + itoa(r.Rounds) + " rounds, " + r.ThroughputTool + ", " + itoa(r.Connections) + " connections)"
	top.Y.Label.Text = "req/s"
	top.Y.Min = 0
	bars, err := plotter.NewBarChart(rps, vg.Points(28))
	if err != nil {
		return err
	}
	bars.Color = colorThroughput
	bars.LineStyle.Width = 0
	top.Add(bars, plotter.NewGrid())
	top.NominalX(names...)
	top.X.Min, top.X.Max = -0.6, float64(len(names))-0.4

	bottom := plot.New()
	bottom.Title.Text = "Latency at " + itoa(int(r.LatencyRate)) + " req/s, open loop (ms, corrected for coordinated omission)"
	bottom.Y.Label.Text = "ms"
	bottom.Y.Min = 0
	w := vg.Points(12)
	for i, series := range []struct {
		name string
		v    plotter.Values
		c    color.Color
	}{{"p50", p50, colorP50}, {"p99", p99, colorP99}, {"p99.9", p999, colorP999}} {
		bc, err := plotter.NewBarChart(series.v, w)
		if err != nil {
			return err
		}
		bc.Color = series.c
		bc.LineStyle.Width = 0
		bc.Offset = w * vg.Length(i-1)
		bottom.Add(bc)
		bottom.Legend.Add(series.name, bc)
	}
	bottom.Add(plotter.NewGrid())
	bottom.Legend.Top = true
	bottom.Legend.Left = true
	bottom.NominalX(names...)
	bottom.X.Min, bottom.X.Max = -0.6, float64(len(names))-0.4

	img := vgimg.New(vg.Points(900), vg.Points(720))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(8), PadBottom: vg.Points(8), PadLeft: vg.Points(8), PadRight: vg.Points(16), PadY: vg.Points(16)}
	canvases := plot.Align([][]*plot.Plot{{top}, {bottom}}, tiles, dc)
	top.Draw(canvases[0][0])
	bottom.Draw(canvases[1][0])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func itoa(n int) string { return strconv.Itoa(n) }
