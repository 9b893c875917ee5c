import subprocess
import sys

from t2t.cli.main import main


def test_demo_runs_every_family(capsys):
    for name in ("t5-tiny", "bert-tiny", "gpt2-tiny", "llama-tiny"):
        assert main(["demo", "--preset", name]) == 0
    out = capsys.readouterr().out
    assert "t5-tiny: arch=encoder-decoder, 45,504 parameters" in out
    assert "finite=True" in out


def test_user_error_is_one_line_and_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "t2t.cli.main", "demo", "--preset", "t5-smal"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "unknown preset 't5-smal' (did you mean 't5-small'?)" in proc.stderr
    assert "Traceback" not in proc.stderr
