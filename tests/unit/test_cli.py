"""The command line describes itself: every command and option has help, with its default."""

from __future__ import annotations

import argparse
from importlib.metadata import version

import pytest

from gateway.cli import _parser, main


def subcommands() -> dict[str, argparse.ArgumentParser]:
    (commands,) = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(commands.choices)


def test_version_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"hookgate {version('hookgate')}"


def test_top_level_help_lists_every_command_with_a_description(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "inbound webhook gateway" in out and "--version" in out
    for name in subcommands():
        assert f"    {name} " in out, name


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_option_of_every_command_is_described(name):
    command = subcommands()[name]
    assert command.description
    for action in command._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{name} {action.dest} has no help"
        takes_value = action.option_strings and action.nargs != 0
        if takes_value and action.dest not in {"secret", "option", "reason"}:
            assert "default" in action.help, f"{name} {action.dest}: say its default"


@pytest.mark.parametrize("port", ["70000", "0", "x"])
@pytest.mark.parametrize("option", [["serve", "--port"], ["worker", "--metrics-port"]])
def test_a_port_out_of_range_is_refused_before_anything_starts(option, port, capsys):
    """Not wrapped around by the socket layer (70000 would listen on 4464)."""
    with pytest.raises(SystemExit) as exited:
        main([*option, port])
    assert exited.value.code == 2
    assert "expected a port number from 1 to 65535" in capsys.readouterr().err
