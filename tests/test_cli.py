import numpy as np

import neurojax as nj
from neurojax.cli import main


def test_list_names_every_gallery_model(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in nj.gallery.names():
        assert name in out


def test_run_prints_summary_and_writes_files(tmp_path, capsys):
    code = main(["run", "cuba", "--duration", "100", "--out", str(tmp_path), "--set", "n=400"])
    assert code == 0
    out = capsys.readouterr().out
    assert "compile" in out and "run" in out and "rate [Hz]" in out
    assert (tmp_path / "cuba_raster.png").stat().st_size > 1000
    res = nj.Result.load(tmp_path / "cuba_result.npz")
    assert res.spikes["E"].shape == (1000, 320)
    assert np.isfinite(float(res.rate("E")))


def test_run_bad_input_is_a_clear_error(tmp_path, capsys):
    assert main(["run", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown gallery model" in capsys.readouterr().err
    assert main(["run", "cuba", "--duration", "100.05", "--out", str(tmp_path)]) == 2
    assert "multiple of dt" in capsys.readouterr().err


def test_bench_passes_its_options_to_the_suite(monkeypatch):
    import os
    import sys

    import pytest

    calls = []

    def fake_execv(exe, argv):
        # execv replaces the process and never returns; mimic that with an exit.
        calls.append(argv)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execv", fake_execv)
    with pytest.raises(SystemExit):
        main(["bench", "--quick", "--cases", "coba"])
    assert calls[0][0] == sys.executable
    assert calls[0][1].endswith("benchmarks/run.py")
    assert calls[0][2:] == ["--quick", "--cases", "coba"]


def test_run_reports_rate_units_by_their_rate(tmp_path, capsys):
    # The v1_rate gallery model has rate units: their graded outputs are not spikes, so
    # the summary gives the end-of-run rate (the low baseline's 1/10/3/2 Hz), no ISI CV.
    assert main(["run", "v1_rate", "--duration", "20", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if "rate unit" in line}
    assert sorted(rows) == ["E", "PV", "SST", "VIP"]
    np.testing.assert_allclose([float(rows[k][2]) for k in ("E", "PV", "SST", "VIP")],
                               [1.0, 10.0, 3.0, 2.0], atol=0.01)
