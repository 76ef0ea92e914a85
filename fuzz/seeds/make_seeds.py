#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/.

Run from anywhere: `python3 fuzz/seeds/make_seeds.py`. Seeds are named `seed-*` so they are
easy to tell from what libFuzzer adds. Decoder/stream seeds start with two control bytes (see the
targets); the rest is real Ollama traffic recorded in tests/fixtures/.
"""
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
FUZZ = ROOT / "fuzz"
FIX = ROOT / "tests" / "fixtures"


def write(target, name, data):
    d = FUZZ / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / f"seed-{name}").write_bytes(data)


keepalive = (FIX / "cpu" / "21_chat_stream_keepalive.body").read_bytes()
a02 = (FIX / "h100" / "a02.chat_turn1.response.ndjson").read_bytes().splitlines(keepends=True)
a02_short = b"".join(a02[:6] + a02[-1:])
generate = (FIX / "cpu" / "14_generate_stream_system.body").read_bytes()

T = '{"model":"qwen3:8b","created_at":"2026-11-25T17:06:42.5Z","message":{"role":"assistant","content":"","thinking":%s},"done":false}\n'
C = '{"model":"qwen3:8b","created_at":"2026-11-25T17:06:42.6Z","message":{"role":"assistant","content":%s},"done":false}\n'
DONE = ('{"model":"qwen3:8b","created_at":"2026-11-25T17:06:42.7Z","message":{"role":"assistant","content":""},'
        '"done":true,"done_reason":"stop","total_duration":352352227,"load_duration":98203252,'
        '"prompt_eval_count":515,"prompt_eval_duration":38236722,"eval_count":3,"eval_duration":143769702}\n')
thinking = T % '"Let me"' + T % '" think"' + C % '"42"' + C % '" is it."' + DONE
error_mid = C % '"Hello"' + C % '" wor"' + '{"error":"an error was encountered while running the model: unexpected EOF"}\n'
error_only = '{"error":"model runner has unexpectedly stopped, this may be due to resource limitations"}\n'
truncated = C % '"Hello"' + C % '" world"'
crlf = (C % '"a"').replace("\n", "\r\n") + "\r\n   \n\t\n" + (C % '"b"').replace("\n", "\r\n") + DONE.rstrip("\n")
unicode = C % '"h\\u00e9llo "' + C % '"héllo 🦀"' + C % '"\\ud83e\\udd80"' + DONE
garbage = C % '"ok"' + "not json at all\n" + DONE
after_done = C % '"x"' + DONE + '{"garbage after done\n'
done_reason = DONE.replace('"stop"', '"length"').replace('"eval_count":3', '"eval_count":18446744073709551615')
escapes = C % '"line\\nbreak \\"quoted\\" tab\\t"' + DONE

bodies = {
    "keepalive": keepalive,
    "a02-short": a02_short,
    "thinking": thinking.encode(),
    "error-mid": error_mid.encode(),
    "error-only": error_only.encode(),
    "truncated": truncated.encode(),
    "crlf-blank": crlf.encode(),
    "unicode": unicode.encode(),
    "garbage": garbage.encode(),
    "after-done": after_done.encode(),
    "done-reason": done_reason.encode(),
    "escapes": escapes.encode(),
    "generate": generate[:1200],
}
controls = [bytes([0x07, 0x2A]), bytes([0x00, 0x01]), bytes([0x3F, 0x99]), bytes([0x81, 0x10])]
for i, (name, body) in enumerate(bodies.items()):
    for target in ("chat_stream", "ndjson_decoder"):
        write(target, name, controls[i % len(controls)] + body)
write("chat_stream", "broken-after-text", bytes([0x83, 0x05]) + truncated.encode())
write("chat_stream", "broken-after-done", bytes([0x85, 0x05]) + thinking.encode())
for name, body in {
    "blank-lines": b"\n\n  \n\t\r\n\x0c\n",
    "cr-cr-lf": b"a\r\r\nb\r\n\r\nc\r",
    "tail-only": b'{"no newline":1}',
    "whitespace-tail": b"x\n \t ",
    "utf8-split": "é🦀\né\n".encode(),
}.items():
    write("ndjson_decoder", name, bytes([0x00, 0x33]) + body)

for p in sorted((ROOT / "personality").glob("*.toml")):
    write("personality_toml", p.stem, p.read_bytes())
write("personality_toml", "minimal", 'name = "x"\ndescription = "d"\nprompt = "p"\n')
write("personality_toml", "examples-crlf",
      'name = "tutor"\r\ndescription = "A patient teacher."\r\nprompt = """\r\nYou are a patient tutor.\r\n"""\r\n'
      'tone = "Warm, encouraging."\r\nrules = ["Check understanding with one question."]\r\n'
      'boundaries = ["Do not write graded homework."]\r\n\r\n[[examples]]\r\nuser = "What is a derivative?"\r\n'
      'assistant = "Think of driving a car ..."\r\n\r\n[[examples]]\r\nuser = "And an integral?"\r\nassistant = "The distance."\r\n')
write("personality_toml", "errors",
      'name = "Bad Name"\ndescription = """two\nlines"""\nprompt = 3\nrules = [""]\ncolour = "blue"\n')

configs = {
    "full": '''# conductor.toml
model = "llama3.2:3b"
personality = "yollayah"
system = "Answer in English."
keep_alive = "30m"
think = false
personality_dirs = ["personalities", "/srv/conductor/personalities"]

[options]
num_ctx = 8192
num_gpu = 99
num_predict = -1
num_batch = 512
num_thread = 8
main_gpu = 0
use_mmap = true
temperature = 0.7
top_p = 0.9
top_k = 40
min_p = 0.05
repeat_penalty = 1.1
seed = 42
stop = ["<|eot_id|>", "User:"]

[ollama]
host = "127.0.0.1:11434"
connect_timeout = "2s"
load_timeout = "5m"
idle_timeout = "1m30s"
max_retries = 3

[gpu]
policy = "enforce"
min_fraction = 1.0
''',
    "remote": '''model = "qwen3:8b"
personality = "forge"
keep_alive = -1
think = true

[ollama]
host = "https://ollama.example.com/proxy/"
token = "sk-not-a-real-token"
connect_timeout = 10
load_timeout = "10m"
idle_timeout = "300ms"
max_retries = 0

[gpu]
policy = "warn"
min_fraction = 0.75
''',
    "ipv6": '''model = "mistral:7b-instruct"
keep_alive = "1h30m"

[options]
num_ctx = 4096
temperature = 0.2

[ollama]
host = "[::1]:11434"
idle_timeout = "1.5h"

[gpu]
policy = "fix"
''',
    "minimal": 'personality = "sage"\nkeep_alive = 0\n[gpu]\npolicy = "off"\n[ollama]\nhost = ":8080"\n',
    "invalid": 'model = "two words"\n[options]\nnum_ctx = 128\n[ollama]\nidle_timeout = "0s"\nhost = "ftp://x"\n[gpu]\nmin_fraction = 1.5\n',
}
for name, text in configs.items():
    write("config_toml", name, text)
