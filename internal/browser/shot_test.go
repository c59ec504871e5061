package browser_test

import (
	"bytes"
	"cmp"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"slices"
)

// smallPNG re-encodes a screenshot with a palette of its 256 most common
// colours (a page has a few hundred; the rest are anti-aliased edges,
// mapped to the nearest), so that the PNGs kept in docs/screenshots stay
// small (ADR 27: at most 300 KB) and exact where it matters: text and
// backgrounds.
func smallPNG(b []byte) ([]byte, error) {
	src, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("decode the screenshot: %w", err)
	}
	r := src.Bounds()
	rgba := image.NewRGBA(r)
	draw.Draw(rgba, r, src, r.Min, draw.Src)
	at := func(i int) color.RGBA {
		return color.RGBA{rgba.Pix[i], rgba.Pix[i+1], rgba.Pix[i+2], rgba.Pix[i+3]}
	}
	count := map[color.RGBA]int{}
	for i := 0; i < len(rgba.Pix); i += 4 {
		count[at(i)]++
	}
	colours := make([]color.RGBA, 0, len(count))
	for c := range count {
		colours = append(colours, c)
	}
	slices.SortFunc(colours, func(a, b color.RGBA) int { return cmp.Compare(count[b], count[a]) })
	pal := make(color.Palette, 0, 256)
	for _, c := range colours[:min(256, len(colours))] {
		pal = append(pal, c)
	}
	index := make(map[color.RGBA]uint8, len(colours))
	out := image.NewPaletted(r, pal)
	for i, j := 0, 0; i < len(rgba.Pix); i, j = i+4, j+1 {
		c := at(i)
		k, ok := index[c]
		if !ok {
			k = uint8(pal.Index(c))
			index[c] = k
		}
		out.Pix[j] = k
	}
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
