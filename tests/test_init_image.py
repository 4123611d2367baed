"""`init_image`: the first scale starts from a given image instead of the content (animation
frames start from the previous frame's result), in the engine and through the service's
`init` field; and the service's /health names the presets' settings, for the GIMP dialog."""

import io

import numpy as np
import pytest
from PIL import Image

from engine_process import QUICK, b64, png
from swag_core import stylize
from swag_core.options import PRESETS

SIZE = (64, 48)  # the working size: one scale, no upsampling after it


def _arrays(*images):
    return [np.asarray(im.convert("RGB"), dtype=np.float32) / 255 for im in images]


@pytest.fixture(scope="module")
def pictures(photo, second_painting):
    """(content, init, style): the photo, an unrelated picture to start from, a painting."""
    return (Image.open(photo).convert("RGB").resize(SIZE),
            Image.open(second_painting).convert("RGB").resize(SIZE).transpose(Image.Transpose.FLIP_TOP_BOTTOM),
            Image.open(second_painting).convert("RGB"))


# Three Adam steps move each pixel by a few hundredths at most: the result stays near its start,
# without the photo's light and dark areas laid under it after the optimisation (engine/tones.py).
NEAR_START = {**QUICK, "layout_weight": 0}


def test_the_first_scale_starts_from_the_init_image(pictures):
    content, init, style = pictures
    started = stylize(content, style, init_image=init, **NEAR_START)
    plain = stylize(content, style, **NEAR_START)
    c, i, s, p = _arrays(content, init, started, plain)
    assert np.abs(s - i).mean() < 0.05 < np.abs(s - c).mean()
    assert np.abs(p - c).mean() < 0.05 < np.abs(p - i).mean()


def test_an_init_image_of_another_size_is_resized(pictures):
    content, init, style = pictures
    result = stylize(content, style, init_image=init.resize((32, 96)), **QUICK)
    assert result.size == content.size


def test_the_service_passes_init_to_the_engine(engine, pictures):
    content, init, style = pictures
    job = engine.submit(png(content), png(style), NEAR_START, init=b64(png(init)))
    assert engine.wait(job)["state"] == "done"
    status, result = engine.request("GET", f"/jobs/{job}/result")
    assert status == 200
    (c, i, r) = _arrays(content, init, Image.open(io.BytesIO(result)))
    assert np.abs(r - i).mean() < 0.05 < np.abs(r - c).mean()


def test_a_bad_init_is_refused_with_a_clear_error(engine, pictures):
    content, _, style = pictures
    body = {"content": b64(png(content)), "style": b64(png(style)), "init": b64(b"hello")}
    status, reply = engine.request("POST", "/jobs", body)
    assert status == 400 and reply["error"] == "init is not an image file (PNG, JPEG, TIFF or WebP expected)"


def test_health_names_the_presets_settings(engine):
    status, reply = engine.request("GET", "/health", token=None)
    assert status == 200 and reply["presets"] == PRESETS


def test_a_queued_job_holds_its_init_as_the_file_and_counts_it(pictures):
    """Like content and style: the job waits with the init image's file, not a decoded image,
    and its bytes count towards the queue's bound."""
    from swag_core.service.server import Service

    content, init, style = (png(image) for image in pictures)
    service = Service("token", "cpu", 250_000)
    try:
        job = service.parse_job({"content": b64(content), "style": b64(style), "init": b64(init), "options": QUICK})
        assert job.init == init and job.size == len(content) + len(style) + len(init)
    finally:
        service.jobs.close()
