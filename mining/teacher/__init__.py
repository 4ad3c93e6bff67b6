"""The world's teacher: an OpenAI-compatible server answering PAIR's prompts from the ground-truth KG.

``knowledge.py`` indexes the truth by name, ``noise.py`` documents and draws the noise,
``respond.py`` answers the four PAIR tasks, ``server.py`` speaks the HTTP protocol.
"""

from mining.teacher.knowledge import Fact, TeacherKnowledge
from mining.teacher.noise import NOISE_LEVELS, NoiseConfig, noise_level
from mining.teacher.respond import PHRASES, answer
from mining.teacher.server import TeacherServer

__all__ = [
    "NOISE_LEVELS",
    "PHRASES",
    "Fact",
    "NoiseConfig",
    "TeacherKnowledge",
    "TeacherServer",
    "answer",
    "noise_level",
]
