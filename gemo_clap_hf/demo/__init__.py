"""`gemo-clap demo` (the main job on the embedded synthetic corpus) and the stand-in towers it trains: randomly
initialised speech and text encoders shaped like the real checkpoints (`towers`), since no weights can be
downloaded where the demo and the tests run. Nothing in the library imports this package."""

from .run import DemoResult, DemoSettings, run_demo

__all__ = ["DemoResult", "DemoSettings", "run_demo"]
