//go:build unix

package sim

import (
	"context"
	"image"
	"image/png"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// chromiumPath returns a headless-capable Chromium, skipping the test where
// there is none unless KASIM_REQUIRE_CHROMIUM is set (CI sets it: there a
// missing browser is a broken setup, not a reason to skip).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("KASIM_REQUIRE_CHROMIUM") != "" {
		t.Fatal("neither chromium nor chromium-browser found, and KASIM_REQUIRE_CHROMIUM is set")
	}
	t.Skip("chromium not installed (apt-get install chromium); set KASIM_REQUIRE_CHROMIUM=1 to make this a failure")
	return ""
}

// screenshot has headless Chromium render svg at its own size and returns
// the picture.
func screenshot(t *testing.T, bin string, svg []byte, width, height int) image.Image {
	t.Helper()
	dir := t.TempDir()
	page := filepath.Join(dir, "diagram.svg")
	shot := filepath.Join(dir, "shot.png")
	if err := os.WriteFile(page, svg, 0o644); err != nil {
		t.Fatal(err)
	}
	// A hung browser must not stall the test run.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--hide-scrollbars",
		"--force-device-scale-factor=1",
		"--window-size="+strconv.Itoa(width)+","+strconv.Itoa(height),
		"--screenshot="+shot, (&url.URL{Scheme: "file", Path: page}).String())
	// Chromium starts helper processes; a process group lets a timeout,
	// and the clean-up after a normal exit, end all of them.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // leftover helpers, if any; usually none
	}
	if ctx.Err() != nil {
		t.Fatalf("chromium timed out:\n%s", out)
	}
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v\n%s", err, out)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() != width || b.Dy() != height {
		t.Fatalf("screenshot is %dx%d, want %dx%d", b.Dx(), b.Dy(), width, height)
	}
	if dst := os.Getenv("KASIM_SVG_SCREENSHOT"); dst != "" {
		// For a person to look at: KASIM_SVG_SCREENSHOT=/tmp/x.png.
		if b, err := os.ReadFile(shot); err == nil {
			os.WriteFile(dst, b, 0o644)
		}
	}
	return img
}

// hexRGB parses "#rrggbb".
func hexRGB(s string) [3]int {
	v, err := strconv.ParseUint(s[1:], 16, 32)
	if err != nil || len(s) != 7 {
		panic("bad colour " + s)
	}
	return [3]int{int(v >> 16), int(v >> 8 & 0xff), int(v & 0xff)}
}

func near(img image.Image, x, y int, c [3]int) bool {
	r, g, b, _ := img.At(x, y).RGBA()
	const tol = 3 // colour rounding; antialiased edges are further off
	return math.Abs(float64(int(r>>8)-c[0])) <= tol && math.Abs(float64(int(g>>8)-c[1])) <= tol && math.Abs(float64(int(b>>8)-c[2])) <= tol
}

// span is a horizontal band of pixel rows that each hold a long run of one
// colour: one arrow, or one filled band.
type span struct{ y0, y1, x0, x1 int }

// bands finds the horizontal bands of colour: pixel rows holding a run of
// at least minRun pixels of it, grouped when adjacent. Text never has such
// runs, and the legend's swatches are shorter.
func bands(img image.Image, colour string, minRun int) []span {
	c := hexRGB(colour)
	b := img.Bounds()
	var out []span
	for y := b.Min.Y; y < b.Max.Y; y++ {
		x0, x1 := -1, -1
		for x := b.Min.X; x < b.Max.X; {
			if !near(img, x, y, c) {
				x++
				continue
			}
			start := x
			for x < b.Max.X && near(img, x, y, c) {
				x++
			}
			if x-start >= minRun {
				if x0 < 0 {
					x0 = start
				}
				x1 = x - 1
			}
		}
		if x0 < 0 {
			continue
		}
		if n := len(out); n > 0 && out[n-1].y1 == y-1 {
			out[n-1].y1 = y
			out[n-1].x0, out[n-1].x1 = min(out[n-1].x0, x0), max(out[n-1].x1, x1)
		} else {
			out = append(out, span{y, y, x0, x1})
		}
	}
	return out
}

// TestSVGScreenshot has a real browser draw the built-in scenario's
// diagram and checks, in the pixels, that the story is there: three
// handshake arrows, the data both ways, one compressed idle gap, then ten
// probes each stopped halfway at a red X, and the error box at the end.
func TestSVGScreenshot(t *testing.T) {
	bin := chromiumPath(t)
	start := time.Now()
	events := runEvents(t, DefaultBuiltin())
	svg := renderSVG(t, events)
	doc := parseSVG(t, svg)
	img := screenshot(t, bin, svg, int(math.Ceil(doc.width)), int(math.Ceil(doc.height)))
	t.Logf("rendered and screenshot in %v", time.Since(start).Round(time.Millisecond))

	minRun := int(2 * svgSwatchW)
	hs := bands(img, SVGColourHandshake, minRun)
	data := bands(img, SVGColourData, minRun)
	gaps := bands(img, SVGColourGap, minRun)
	probes := bands(img, SVGColourProbe, minRun)
	errs := bands(img, "#fdecec", minRun) // the application error's box
	if len(hs) != 3 {
		t.Errorf("%d handshake arrows (%v), want 3: SYN, SYN-ACK, ACK", len(hs), hs)
	}
	if len(data) != 2 {
		t.Errorf("%d data arrows (%v), want 2: one each way", len(data), data)
	}
	if len(gaps) != 1 {
		t.Fatalf("%d idle-gap bands (%v), want 1", len(gaps), gaps)
	}
	if len(probes) != 10 {
		t.Errorf("%d probe arrows (%v), want 10", len(probes), probes)
	}
	if len(errs) != 1 {
		t.Errorf("%d error boxes (%v), want 1: recv() fails", len(errs), errs)
	}
	if len(hs) != 3 || len(probes) == 0 || len(errs) == 0 {
		return
	}
	// Top to bottom: handshake, gap, probes, error.
	gap := gaps[0]
	if hs[2].y1 >= gap.y0 || probes[0].y0 <= gap.y1 || errs[0].y0 <= probes[len(probes)-1].y1 {
		t.Errorf("out of order: handshake %v, gap %v, probes %v, error %v", hs, gap, probes, errs)
	}
	// Each probe leaves the client's lifeline (where the SYN starts) and
	// stops halfway to the server's, at a red X.
	client, server := hs[0].x0, hs[0].x1
	red := hexRGB(SVGColourDropped)
	for i, p := range probes {
		if abs(p.x0-client) > 2 || abs(p.x1-(client+server)/2) > 3 {
			t.Errorf("probe %d spans x %d-%d; want %d to about %d, halfway", i+1, p.x0, p.x1, client, (client+server)/2)
		}
		found := false
		for y := p.y0 - 6; y <= p.y1+6 && !found; y++ {
			for x := p.x1 - 6; x <= p.x1+6 && !found; x++ {
				found = near(img, x, y, red)
			}
		}
		if !found {
			t.Errorf("probe %d: no red X at its end (%d, %d)", i+1, p.x1, p.y0)
		}
	}
}

func abs(v int) int { return max(v, -v) }
