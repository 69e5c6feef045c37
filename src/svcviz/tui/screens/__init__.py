"""Modal screens: help, the model picker, the line editor for a client."""

from svcviz.tui.screens.help import HelpScreen
from svcviz.tui.screens.models import ModelPicker
from svcviz.tui.screens.send import SendLine

__all__ = ["HelpScreen", "ModelPicker", "SendLine"]
