"""A RAVDESS-shaped index built from valid file names, for tests that need no audio."""
import itertools

import pandas as pd

from serlib.datasets.ravdess import parse_name


def ravdess_like_frame(actors=range(1, 21), *, emotions=range(1, 9), intensities=(1, 2), statements=(1, 2),
                       repetitions=(1, 2), suffix=".flac") -> pd.DataFrame:
    """One row per valid speech name (no strong neutral), with path and content_id columns."""
    rows = []
    for actor in actors:
        for emotion, intensity, statement, repetition in itertools.product(emotions, intensities, statements,
                                                                           repetitions):
            if emotion == 1 and intensity == 2:
                continue
            name = f"03-01-{emotion:02d}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}"
            rows.append({**parse_name(name), "path": f"Actor_{actor:02d}/{name}{suffix}", "content_id": name})
    return pd.DataFrame(rows)
