#!/usr/bin/env python3
"""Generates the sample appearance images (Python standard library only).

    python3 assets/images/generate.py

signature-sample.png: a blue handwritten-like stroke on a transparent
background (DOMAIN.md P1). seal-sample.png: a red round seal with an outer
ring, ring "text" marks, an inner ring and a star, transparent (P2); the
seal fills the image edge to edge, so the image's width is the seal's
diameter when it is placed at real size.

Both are drawn from mathematical curves in this file: no third-party artwork.
The output is deterministic (same bytes on every run).
"""
import math
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def write_png(path, width, height, pixels):
    """pixels: bytearray RGBA, rows top to bottom."""
    raw = bytearray()
    stride = width * 4
    for y in range(height):
        raw.append(0)  # filter: none
        raw += pixels[y * stride:(y + 1) * stride]

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    png = b"\x89PNG\r\n\x1a\n"
    png += chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(bytes(raw), 9))
    png += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


class Canvas:
    def __init__(self, w, h):
        self.w, self.h = w, h
        self.alpha = [0.0] * (w * h)

    def dot(self, cx, cy, r):
        """A soft disc: coverage blended with max, so strokes overlap cleanly."""
        x0, x1 = max(0, int(cx - r - 1)), min(self.w - 1, int(cx + r + 1))
        y0, y1 = max(0, int(cy - r - 1)), min(self.h - 1, int(cy + r + 1))
        for y in range(y0, y1 + 1):
            for x in range(x0, x1 + 1):
                d = math.hypot(x + 0.5 - cx, y + 0.5 - cy)
                a = max(0.0, min(1.0, r - d + 0.5))
                i = y * self.w + x
                if a > self.alpha[i]:
                    self.alpha[i] = a

    def stroke(self, points, r):
        for (xa, ya), (xb, yb) in zip(points, points[1:]):
            n = max(1, int(math.hypot(xb - xa, yb - ya) / (r * 0.5)))
            for k in range(n + 1):
                t = k / n
                self.dot(xa + (xb - xa) * t, ya + (yb - ya) * t, r)

    def ring(self, cx, cy, radius, width):
        for y in range(self.h):
            for x in range(self.w):
                d = abs(math.hypot(x + 0.5 - cx, y + 0.5 - cy) - radius)
                a = max(0.0, min(1.0, width / 2 - d + 0.5))
                i = y * self.w + x
                if a > self.alpha[i]:
                    self.alpha[i] = a

    def pixels(self, rgb):
        out = bytearray()
        for a in self.alpha:
            out += bytes(rgb) + bytes([int(round(a * 255))])
        return out


def signature():
    w, h = 600, 240
    c = Canvas(w, h)
    # A looping signature: a flourish of Lissajous-like loops and an underline.
    pts = []
    for k in range(0, 900):
        t = k / 900 * 2 * math.pi * 2.2
        x = 60 + k * 0.52 + 28 * math.sin(t * 1.5)
        y = 120 - 55 * math.sin(t) * math.exp(-((k - 450) / 520) ** 2) + 12 * math.cos(t * 3)
        pts.append((x, y))
    c.stroke(pts, 3.2)
    under = [(80 + k * 4.4, 190 - 10 * math.sin(k / 100 * math.pi) + k * 0.05) for k in range(101)]
    c.stroke(under, 2.4)
    write_png(os.path.join(HERE, "signature-sample.png"), w, h, c.pixels((20, 50, 170)))


def seal():
    n = 420
    c = Canvas(n, n)
    cx = cy = n / 2
    c.ring(cx, cy, n / 2 - 6, 9)        # outer ring
    c.ring(cx, cy, n / 2 - 96, 5)       # inner ring
    # Ring "text": blocks of short strokes between the rings, like letters.
    r_in, r_out = n / 2 - 80, n / 2 - 26
    for k in range(44):
        if k % 11 == 10:
            continue  # word gaps
        a = k / 44 * 2 * math.pi + 0.05
        for j in range(3):
            rr = r_in + (r_out - r_in) * (0.15 + 0.3 * j)
            da = 0.035 * (1 if j != 1 else 0.6)
            p = [(cx + rr * math.cos(a - da), cy + rr * math.sin(a - da)),
                 (cx + rr * math.cos(a + da), cy + rr * math.sin(a + da))]
            c.stroke(p, 2.6)
        p = [(cx + r_in * 1.05 * math.cos(a), cy + r_in * 1.05 * math.sin(a)),
             (cx + r_out * 0.95 * math.cos(a), cy + r_out * 0.95 * math.sin(a))]
        c.stroke(p, 2.2)
    # A five-pointed star in the centre.
    star = []
    for k in range(11):
        a = -math.pi / 2 + k * math.pi / 5
        r = 60 if k % 2 == 0 else 24
        star.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    c.stroke(star, 3.0)
    write_png(os.path.join(HERE, "seal-sample.png"), n, n, c.pixels((210, 20, 30)))


if __name__ == "__main__":
    signature()
    seal()
