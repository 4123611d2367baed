"""An engine whose answer is known exactly, for testing the GIMP side of the plug-ins."""

import struct


class ReferenceEngine:
    """Stands in for EngineClient: inverts every colour sample of the content it gets, so each
    pixel of the result is known. `alpha_out` adds an alpha channel of zeros to its answer (the
    plug-in must still keep the source's alpha); `depth_out` answers at another bit depth;
    `fail` is raised by every job from number `fail_at` on (0: the first). Its presets are its own, made up
    for the tests, so that a dialog showing them shows what the engine said."""

    PRESETS = {"fast": {"size": 96, "iterations": 12}, "balanced": {"size": 160, "iterations": 34},
               "best": {"size": 320, "iterations": 80}}

    def __init__(self, swag_client, fail=None, depth_out=None, alpha_out=False, size_out=None, fail_at=0):
        self.client, self.fail, self.fail_at, self.depth_out = swag_client, fail, fail_at, depth_out
        self.alpha_out, self.size_out = alpha_out, size_out
        self.calls = []

    def presets(self):
        return self.PRESETS

    def stylize(self, content_png, style_bytes, options, progress=None, should_cancel=None, init_png=None):
        w, h, channels, depth, raw = self.client.decode_png(content_png)
        self.calls.append(dict(size=(w, h), channels=channels, depth=depth, style=style_bytes,
                               options=options, init=init_png))
        for fraction, text in ((0.0, "starting engine"), (0.5, "scale 1 of 1: iteration 1 of 2"),
                               (1.0, "done")):
            progress(fraction, text)
        if self.fail is not None and len(self.calls) > self.fail_at:
            raise self.fail
        if depth == 8:
            samples = [255 - b for b in raw]
        else:
            samples = [65535 - v for v in struct.unpack(">%dH" % (len(raw) // 2), raw)]
        out_depth = self.depth_out or depth
        if out_depth != depth:  # 16 -> 8 bits, as the engine does for RGB
            samples = [round(v / 257) for v in samples]
        if self.alpha_out:
            per_pixel = [samples[i:i + channels] for i in range(0, len(samples), channels)]
            samples = [v for p in per_pixel for v in p + [0]]
            channels += 1
        data = bytes(samples) if out_depth == 8 else struct.pack(">%dH" % len(samples), *samples)
        if self.size_out:
            w, h = self.size_out
            data = data[: w * h * channels * out_depth // 8]
        return self.client.encode_png(w, h, channels, out_depth, data)
