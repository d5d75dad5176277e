"""Draws frames of a `vireid run` on real footage with each person's box,
track and identity: docs/real-footage.png (bench/real_footage.sh).

Boxes per frame come from `vireid detect --track --jsonl` on the same file with
the same config (the same detector and tracker, every frame processed, so the
same track ids as the run); identities from the run's sighting events
(track_id -> identity_id). The script checks that each track of the run has
about the same first/last frame time in the detect output before it trusts
the join. Frames are decoded with gst-launch-1.0.

Usage: real_footage_picture.py VIDEO BOXES.jsonl TRACKS.jsonl SIGHTINGS.jsonl OUT.png FRAME [FRAME ...]
"""

import json
import pathlib
import subprocess
import sys
import tempfile

from PIL import Image, ImageDraw, ImageFont

FONT = pathlib.Path(__file__).resolve().parent.parent / "assets/fonts/DejaVuSans.ttf"
PALETTE = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
]


def lines(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def decode_frames(video, wanted, tmp):
    """Every frame of the video as JPEG into tmp (numbered from 0); returns the wanted paths."""
    pattern = str(pathlib.Path(tmp) / "%05d.jpg")
    subprocess.run(
        ["gst-launch-1.0", "-q", "filesrc", f"location={video}", "!", "decodebin", "!", "videoconvert", "!",
         "jpegenc", "quality=92", "!", "multifilesink", f"location={pattern}"],
        check=True,
    )
    return {n: pathlib.Path(tmp) / f"{n:05d}.jpg" for n in wanted}


def main():
    video, boxes_p, tracks_p, sightings_p, out = sys.argv[1:6]
    wanted = [int(a) for a in sys.argv[6:]]
    frames = {r["frame"]: r for r in lines(boxes_p)}
    identity = {s["track_id"]: s["identity_id"] for s in lines(sightings_p) if s.get("event") == "sighting"}

    # The join is only sound if detect's tracks are the run's tracks.
    seen = {}
    for r in frames.values():
        for t in r["tracks"]:
            first, last = seen.get(t["track_id"], (r["pts_ns"], r["pts_ns"]))
            seen[t["track_id"]] = (min(first, r["pts_ns"]), max(last, r["pts_ns"]))
    mismatched = []
    for t in lines(tracks_p):
        d = seen.get(t["track_id"])
        # detect shows a track once confirmed (min_hits) and up to a frame after its last hit.
        if d is None or not (0 <= d[0] - t["first_pts_ns"] <= 1e9 and 0 <= d[1] - t["last_pts_ns"] <= 0.5e9):
            mismatched.append(t["track_id"])
    if mismatched:
        sys.exit(f"tracks {mismatched} of the run do not match the detect output: not the same config/file?")

    font = ImageFont.truetype(str(FONT), 15)
    small = ImageFont.truetype(str(FONT), 13)
    tiles = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = decode_frames(video, wanted, tmp)
        for n in wanted:
            im = Image.open(paths[n]).convert("RGB")
            d = ImageDraw.Draw(im)
            r = frames[n]
            for t in r["tracks"]:
                b = t["bbox"]
                x, y, w, h = b["x"], b["y"], b["w"], b["h"]
                ident = identity.get(t["track_id"])
                colour = PALETTE[(ident or 0) % len(PALETTE)] if ident else (200, 200, 200)
                d.rectangle([x, y, x + w, y + h], outline=colour, width=3)
                label = f"id {ident}" if ident else f"t{t['track_id']}"
                tw = d.textlength(label, font=font)
                d.rectangle([x, y - 18, x + tw + 6, y], fill=colour)
                d.text((x + 3, y - 18), label, fill=(0, 0, 0), font=font)
            caption = f"frame {n}  t = {r['pts_ns'] / 1e9:.1f} s  {len(r['tracks'])} tracked"
            d.rectangle([0, 0, d.textlength(caption, font=small) + 10, 18], fill=(0, 0, 0))
            d.text((5, 2), caption, fill=(255, 255, 255), font=small)
            tiles.append(im)
    # Two columns, each tile at half size.
    tw, th = tiles[0].width // 2, tiles[0].height // 2
    cols = 2
    rows = (len(tiles) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * tw, rows * th), (0, 0, 0))
    for i, im in enumerate(tiles):
        sheet.paste(im.resize((tw, th), Image.LANCZOS), ((i % cols) * tw, (i // cols) * th))
    # 256 colours keep the PNG small (docs/ is in the repository).
    sheet.quantize(colors=256, method=Image.MEDIANCUT).save(out, optimize=True)
    print(f"{out}: {len(tiles)} frames, {sheet.width}x{sheet.height}, {pathlib.Path(out).stat().st_size} bytes")


if __name__ == "__main__":
    main()
