"""CLINC150 loader: split sizes from the dataset README, labels, checksums, downloads."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from failwise import OUT_OF_SCOPE
from failwise.datasets import ChecksumError, DownloadError, load_clinc150
from failwise.exceptions import InputError

# train, val, test, oos_train, oos_val, oos_test (README, "Split sizes").
SIZES = {
    "full": (15_000, 3_000, 4_500, 100, 100, 1_000),
    "small": (7_500, 3_000, 4_500, 100, 100, 1_000),
    "imbalanced": (10_525, 3_000, 4_500, 100, 100, 1_000),
    "oos_plus": (15_000, 3_000, 4_500, 250, 100, 1_000),
}


@pytest.mark.parametrize("variant", sorted(SIZES))
def test_split_sizes_match_the_dataset_readme(clinc150_dir: Path, variant: str) -> None:
    train, val, test, oos_train, oos_val, oos_test = SIZES[variant]
    data = load_clinc150(clinc150_dir, variant=variant)
    assert (len(data.train), len(data.val), len(data.test)) == (
        train,
        val + oos_val,
        test + oos_test,
    )
    assert int((data.train.y == OUT_OF_SCOPE).sum()) == 0
    assert int((data.val.y == OUT_OF_SCOPE).sum()) == oos_val
    assert int((data.test.y == OUT_OF_SCOPE).sum()) == oos_test
    with_oos = load_clinc150(clinc150_dir, variant=variant, include_oos_train=True)
    assert len(with_oos.train) == train + oos_train
    assert int((with_oos.train.y == OUT_OF_SCOPE).sum()) == oos_train
    assert with_oos.metadata["n_oos_train"] == oos_train


def test_full_variant_has_150_sorted_intents_with_100_training_queries_each(
    clinc150_dir: Path,
) -> None:
    data = load_clinc150(clinc150_dir)
    assert data.n_classes == 150
    assert list(data.classes) == sorted(data.classes)
    assert data.classes[0] == "accept_reservations"
    assert "oos" not in data.classes
    counts = np.bincount(data.train.y, minlength=150)
    assert counts.min() == counts.max() == 100
    in_scope_test = data.test.y[data.test.y >= 0]
    assert np.bincount(in_scope_test, minlength=150).tolist() == [30] * 150
    assert data.train.y.dtype == np.intp
    assert all(isinstance(text, str) for text in data.train.X)


def test_out_of_scope_rows_follow_the_in_scope_rows(clinc150_dir: Path) -> None:
    data = load_clinc150(clinc150_dir)
    assert (data.val.y[:3000] >= 0).all()
    assert (data.val.y[3000:] == OUT_OF_SCOPE).all()
    assert data.test.is_out_of_scope.sum() == 1000


def test_validation_and_test_splits_are_identical_across_variants(clinc150_dir: Path) -> None:
    full = load_clinc150(clinc150_dir)
    small = load_clinc150(clinc150_dir, variant="small")
    assert full.test.X == small.test.X
    assert np.array_equal(full.val.y, small.val.y)
    assert full.classes == small.classes


def test_parent_folder_with_a_clinc150_subfolder_is_accepted(clinc150_dir: Path) -> None:
    data = load_clinc150(clinc150_dir.parent)
    assert len(data.train) == 15_000


def test_unknown_variant_names_the_valid_ones(clinc150_dir: Path) -> None:
    with pytest.raises(InputError, match=r"unknown variant 'huge'.*'full', 'small'"):
        load_clinc150(clinc150_dir, variant="huge")


def test_missing_local_file_names_the_expected_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"Expected file data_full\.json in data_dir"):
        load_clinc150(tmp_path)


def test_missing_data_dir_says_it_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_clinc150(tmp_path / "nowhere")


def test_modified_local_file_fails_the_checksum(tmp_path: Path) -> None:
    (tmp_path / "data_full.json").write_text('{"train": []}', encoding="utf-8")
    with pytest.raises(
        ChecksumError, match=r"Checksum mismatch for data_full\.json .* expected sha256 36923c37"
    ):
        load_clinc150(tmp_path)


# --------------------------------------------------------------------------- downloads


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def serve() -> Iterator[Callable[[Path], str]]:
    """Serve a folder on 127.0.0.1 (no external network); yields a function folder -> URL."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_download_verifies_caches_and_is_reused_offline(
    clinc150_dir: Path, tmp_path: Path, serve: Callable[[Path], str]
) -> None:
    url = serve(clinc150_dir)
    cache = tmp_path / "cache"
    data = load_clinc150(mirror=url, cache_dir=cache)
    assert len(data.train) == 15_000
    cached = list(cache.rglob("*"))
    files = [path for path in cached if path.is_file()]
    assert [path.name for path in files] == ["data_full.json"]
    again = load_clinc150(mirror="http://127.0.0.1:1", cache_dir=cache, download=False)
    assert again.test.X == data.test.X


def test_file_url_mirror_works(clinc150_dir: Path, tmp_path: Path) -> None:
    data = load_clinc150(mirror=clinc150_dir.as_uri(), cache_dir=tmp_path, variant="small")
    assert len(data.train) == 7_500


def test_corrupt_download_is_rejected_and_leaves_nothing_in_the_cache(
    tmp_path: Path, serve: Callable[[Path], str]
) -> None:
    served = tmp_path / "served"
    served.mkdir()
    (served / "data_full.json").write_text("<html>proxy error</html>", encoding="utf-8")
    url = serve(served)
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError, match=r"Checksum mismatch for data_full\.json downloaded"):
        load_clinc150(mirror=url, cache_dir=cache)
    assert [path for path in cache.rglob("*") if path.is_file()] == []


def test_unreachable_server_suggests_a_local_copy(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(
        DownloadError, match=r"could not download data_full\.json .*pass data_dir=PATH"
    ):
        load_clinc150(mirror=f"http://127.0.0.1:{port}", cache_dir=tmp_path)
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []


def test_download_false_without_cache_says_how_to_proceed(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"not in the cache .* download=False"):
        load_clinc150(cache_dir=tmp_path, download=False)


def test_cache_dir_comes_from_the_environment(
    clinc150_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAILWISE_CACHE_DIR", str(tmp_path))
    load_clinc150(mirror=clinc150_dir.as_uri())
    assert any(path.name == "data_full.json" for path in tmp_path.rglob("*"))


def test_tampered_cache_file_is_detected(clinc150_dir: Path, tmp_path: Path) -> None:
    load_clinc150(mirror=clinc150_dir.as_uri(), cache_dir=tmp_path)
    (cached,) = list(tmp_path.rglob("data_full.json"))
    cached.write_bytes(cached.read_bytes()[:-10])
    with pytest.raises(ChecksumError, match=r"cached data_full\.json .* Delete"):
        load_clinc150(mirror=clinc150_dir.as_uri(), cache_dir=tmp_path)
