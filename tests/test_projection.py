"""Exact cosine kNN (against scikit-learn) and the 2-D projection (PCA for tiny sets, UMAP otherwise)."""
import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from engine.analysis.projection import project_2d
from engine.analysis.relations import _drop_self, exact_knn, knn_graph


def test_exact_knn_matches_sklearn_brute_cosine() -> None:
    x = np.random.default_rng(0).standard_normal((300, 16)).astype(np.float32)
    idx, sims = exact_knn(x, 7, chunk=64)  # several chunks, last one partial
    dist, ref = NearestNeighbors(n_neighbors=8, metric="cosine", algorithm="brute").fit(x).kneighbors(x)
    np.testing.assert_array_equal(idx, ref[:, 1:])
    np.testing.assert_allclose(sims, 1.0 - dist[:, 1:], atol=1e-5)
    assert idx.dtype == np.int64 and sims.dtype == np.float32
    assert not (idx == np.arange(300)[:, None]).any()  # self excluded
    assert (np.diff(sims, axis=1) <= 1e-7).all()  # best first


def test_exact_knn_clips_k_and_handles_tiny_and_zero_rows() -> None:
    x = np.array([[1.0, 0], [0, 1.0], [0, 0]], dtype=np.float32)  # a zero row must not give NaN
    idx, sims = exact_knn(x, 10)
    assert idx.shape == (3, 2) and np.isfinite(sims).all()
    assert exact_knn(x[:1], 5)[0].shape == (1, 0)
    idx, sims = knn_graph(x, 1)
    assert idx[0, 0] == 1 or sims[0, 0] == 0


def test_drop_self_from_an_approximate_graph() -> None:
    idx = np.array([[0, 2, 1], [2, 1, 0], [1, 0, 3]])  # row 2 missed itself
    dist = np.array([[0, 0.1, 0.2], [0.1, 0, 0.3], [0.1, 0.2, 0.3]])
    out_idx, out_dist = _drop_self(idx, dist, 2)
    np.testing.assert_array_equal(out_idx, [[2, 1], [2, 0], [1, 0]])
    np.testing.assert_allclose(out_dist, [[0.1, 0.2], [0.1, 0.3], [0.1, 0.2]])


@pytest.mark.parametrize("n", [0, 1, 2, 20])
def test_pca_path_for_tiny_sets(n: int) -> None:
    x = np.random.default_rng(0).standard_normal((n, 8)).astype(np.float32)
    coords, method = project_2d(x, seed=0)
    assert method == "pca" and coords.shape == (n, 2) and coords.dtype == np.float32
    assert np.isfinite(coords).all()
    if n == 20:
        np.testing.assert_array_equal(coords, project_2d(x, seed=0)[0])


def two_blobs(n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 2
    centers = rng.standard_normal((2, 32)) * 3
    return (centers[labels] + rng.standard_normal((n, 32))).astype(np.float32), labels


def test_umap_with_precomputed_exact_knn_separates_blobs() -> None:
    x, labels = two_blobs()
    knn = exact_knn(x, 10)  # fewer columns than n_neighbors=15: project_2d uses k + 1
    coords, method = project_2d(x, seed=0, knn=knn, n_epochs=30)
    assert method == "umap" and coords.shape == (300, 2) and np.isfinite(coords).all()
    centroids = np.stack([coords[labels == k].mean(axis=0) for k in (0, 1)])
    spread = np.mean([np.linalg.norm(coords[labels == k] - centroids[k], axis=1).mean() for k in (0, 1)])
    assert np.linalg.norm(centroids[0] - centroids[1]) > 3 * spread


def test_umap_knn_must_match_the_features() -> None:
    x, _ = two_blobs(100)
    with pytest.raises(ValueError, match="knn"):
        project_2d(x, knn=exact_knn(x[:50], 5), n_epochs=5)


@pytest.mark.parametrize("k", [5, 30])  # fewer and more columns than n_neighbors
def test_precomputed_knn_skips_umaps_own_neighbour_search(k: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import umap.umap_

    def no_search(*args, **kwargs):
        raise AssertionError("UMAP ignored the precomputed graph and ran NN-descent")

    monkeypatch.setattr(umap.umap_, "nearest_neighbors", no_search)
    x, _ = two_blobs(120)
    coords, method = project_2d(x, seed=1, knn=exact_knn(x, k), n_epochs=5)
    assert method == "umap" and np.isfinite(coords).all()
