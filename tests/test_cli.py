import numpy as np
import pytest

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


def test_run_header_names_the_configured_model(tmp_path, capsys):
    # `--set regime=A` used to print regime C's reference: the header must name the
    # configuration that ran and the statistics published for it.
    code = main(["run", "brunel", "--duration", "1", "--out", str(tmp_path),
                 "--set", "regime=A", "--set", "n_e=1100"])
    assert code == 0
    header, expected = capsys.readouterr().out.splitlines()[:2]
    assert header.startswith("neurojax run brunel (regime='A', n_e=1100): 1375 neurons")
    assert "regime A (g=3, eta=2)" in expected and "333.5 Hz" in expected
    assert "regime C" not in header + expected


def test_run_header_says_when_no_statistics_apply(tmp_path, capsys):
    assert main(["run", "cuba", "--duration", "1", "--out", str(tmp_path),
                 "--set", "n=200"]) == 0
    expected = capsys.readouterr().out.splitlines()[1]
    assert "this run has n=200: no reference statistics" in expected


@pytest.mark.parametrize(
    "item, message",
    [
        ("n", "--set n: expected ARG=VALUE"),
        ("=3", "--set =3: expected ARG=VALUE"),
        ("n=abc", "--set n=abc: n takes int (default 4000), got 'abc'"),
        ("w_e=fast", "--set w_e=fast: w_e takes float (default 16.2), got 'fast'"),
        ("tau=3", "--set tau=3: cuba has no argument 'tau'; its arguments: n, p, w_e, w_i"),
    ],
)
def test_bad_set_is_a_one_line_error_naming_the_option(tmp_path, capsys, item, message):
    assert main(["run", "cuba", "--out", str(tmp_path), "--set", item]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith(f"neurojax: error: {message}"), err


def test_set_values_take_the_factory_types(tmp_path, capsys):
    # `g=none` is the factory's own default; strings stay strings.
    from neurojax.cli import _convert

    entry = nj.gallery.info("brunel")
    assert _convert(entry, "g", "none", "g=none") is None
    assert _convert(entry, "g", "4", "g=4") == 4.0
    assert _convert(entry, "regime", "A", "regime=A") == "A"
    assert _convert(entry, "n_e", "2000", "n_e=2000") == 2000


def test_unknown_option_prints_the_run_usage(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "cuba", "--bogus", "--out", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: neurojax run ") and "--set ARG=VALUE" in err
    assert "neurojax run: error: unrecognized arguments: --bogus" in err


def test_progress_shows_the_bar(tmp_path, capsys):
    code = main(["run", "cuba", "--duration", "20", "--set", "n=200", "--progress",
                 "--out", str(tmp_path)])
    assert code == 0
    captured = capsys.readouterr()
    assert "simulate: 100%" in captured.err and "200/200" in captured.err
    assert "compile in the run" in captured.out


def test_info_prints_source_arguments_and_statistics(capsys):
    assert main(["info", "brunel"]) == 0
    out = capsys.readouterr().out
    assert "source: Brunel 2000" in out
    assert "neurojax/gallery/brunel.py" in out
    assert "regime = 'C': \"A\", \"B\", \"C\" or \"D\"" in out
    assert "delay = 1.5: Transmission delay D [ms]." in out
    for regime in "ABCD":
        assert f"regime {regime} (g=" in out
    assert "333.5 Hz" in out and "37.6 Hz" in out
    assert main(["info", "coba"]) == 0
    out = capsys.readouterr().out
    assert "w_i = 67.0: Excitatory / inhibitory conductance increments [nS]." in out
    assert "18.5 +- 1.5 Hz" in out
    assert main(["info", "nope"]) == 2
    assert "unknown gallery model 'nope'" in capsys.readouterr().err


def test_output_cut_short_by_a_pipe_ends_quietly():
    # `neurojax info brunel | head -1`: the reader is gone before the command writes
    # (here it closes the pipe at once, while the child still imports jax); the
    # command must end with status 0 and no BrokenPipeError traceback.
    import subprocess
    import sys

    code = "import sys; from neurojax.cli import main; sys.exit(main(['info', 'brunel']))"
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
