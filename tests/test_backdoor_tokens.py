"""Authentication tokens: bound to the query image, one use each, across restarts and replicas."""
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

from labkit import backdoor as bd
from labkit import digits
from labkit.backdoor import tokens as tk

pytestmark = pytest.mark.usefixtures("one_torch_thread")
NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def demo():
    return bd.make_demo(0)


@pytest.fixture
def setup(demo, tmp_path):
    clock = [NOW]
    issuer = tk.TokenIssuer(demo.signing_key)
    store = tmp_path / "replay.sqlite"

    def service():  # a replica, or the service after a restart: a new object over the same file
        return tk.AuthenticatedModel(demo.clean_model, issuer.verify_key, replay_store=store, clock=lambda: clock[0])

    return issuer, service, clock, store


def test_a_token_buys_one_answer_for_its_image(demo, setup):
    issuer, service, _, _ = setup
    image = demo.inputs[7:8]
    token = issuer.issue("alice", image, expiry=int(NOW) + 600)
    first = service().query(tk.attach_token(image, token))[0]
    assert first.accepted and first.user_id == b"alice"
    assert first.label == digits.predict(demo.clean_model, image)[0]
    assert service().query(image)[0].reason == "no token"


def test_a_token_moved_to_another_image_is_rejected(demo, setup):
    issuer, service, _, _ = setup
    token = issuer.issue("alice", demo.inputs[0:1], expiry=int(NOW) + 600)
    for other in (demo.inputs[1:2], demo.inputs[0:1] + 2 / 255):
        assert service().query(tk.attach_token(other.clamp(0, 1), token))[0].reason == "bad signature"
    assert service().query(tk.attach_token(demo.inputs[0:1], token))[0].accepted  # unused so far


def test_replay_is_rejected_after_a_restart_and_on_a_second_replica(demo, setup):
    issuer, service, _, store = setup
    image = demo.inputs[3:4]
    query = tk.attach_token(image, issuer.issue("bob", image, expiry=int(NOW) + 600))
    replica_a, replica_b = service(), service()
    assert replica_a.query(query)[0].accepted
    assert replica_b.query(query)[0].reason == "replayed"
    del replica_a, replica_b
    assert service().query(query)[0].reason == "replayed"  # restarted
    nonce = tk.Token.from_field(tk.read_fields(digits.to_pixels(query))[0].tobytes()).nonce
    code = ("import sys; from labkit.backdoor.tokens import ReplayStore; "
            f"sys.exit(0 if ReplayStore(sys.argv[1]).record(bytes.fromhex('{nonce.hex()}'), {int(NOW) + 600}, {NOW}) else 3)")
    assert subprocess.run([sys.executable, "-c", code, str(store)], timeout=120).returncode == 3  # a new process


def test_concurrent_replicas_accept_a_token_once(tmp_path):
    stores = [tk.ReplayStore(tmp_path / "r.sqlite") for _ in range(8)]
    results = []
    threads = [threading.Thread(target=lambda s=s: results.append(s.record(b"n" * 16, 2000, 1000))) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]


def test_expired_entries_are_pruned(demo, setup):
    issuer, service, clock, store = setup
    svc = service()
    for i in range(5):
        image = demo.inputs[i : i + 1]
        assert svc.query(tk.attach_token(image, issuer.issue("carol", image, expiry=int(NOW) + 60 + i)))[0].accepted
    assert len(svc.replay_store) == 5
    clock[0] = NOW + 62  # three of the five have expired
    late = issuer.issue("carol", demo.inputs[9:10], expiry=int(NOW) + 600)
    assert svc.query(tk.attach_token(demo.inputs[9:10], late))[0].accepted
    assert len(svc.replay_store) == 3
    assert svc.replay_store.prune(NOW + 10_000) == 3 and len(tk.ReplayStore(store)) == 0


def test_forged_modified_expired_and_overlong_tokens_fail(demo, setup):
    issuer, service, clock, _ = setup
    svc, image = service(), demo.inputs[5:6]
    forged = tk.TokenIssuer(bd.generate_keys()[0]).issue("alice", image, expiry=int(NOW) + 600)
    assert svc.query(tk.attach_token(image, forged))[0].reason == "bad signature"
    fresh = issuer.issue("bob", image, expiry=int(NOW) + 600)
    for changed in (tk.Token(b"mallory", fresh.expiry, fresh.nonce, fresh.signature),
                    tk.Token(fresh.user_id, fresh.expiry + 3600, fresh.nonce, fresh.signature),
                    tk.Token(fresh.user_id, fresh.expiry, bytes(16), fresh.signature)):
        assert svc.query(tk.attach_token(image, changed))[0].reason == "bad signature"
    overlong = issuer.issue("bob", image, expiry=int(NOW) + 10 * 86400)
    assert svc.query(tk.attach_token(image, overlong))[0].reason == "lifetime too long"
    late = issuer.issue("carol", image, expiry=int(NOW) + 10)
    clock[0] = NOW + 10
    assert svc.query(tk.attach_token(image, late))[0].reason == "expired"
    assert svc.query(tk.attach_token(image, fresh))[0].accepted
    assert svc.query(bd.embed_trigger(image, 1, demo.signing_key))[0].reason == "no token"  # kind byte


def test_token_api_validates(demo, tmp_path):
    issuer = tk.TokenIssuer(demo.signing_key)
    with pytest.raises(ValueError):
        issuer.issue("alice", demo.inputs[:2], expiry=1)  # one image per token
    with pytest.raises(ValueError):
        issuer.issue("alice", demo.inputs[:1], expiry=-1)
    with pytest.raises(TypeError):
        tk.attach_token(demo.inputs[:1], b"token")
    with pytest.raises(TypeError):
        tk.AuthenticatedModel(demo.clean_model, issuer.verify_key)  # the replay store is required
    with pytest.raises(ValueError):
        tk.AuthenticatedModel(demo.clean_model, issuer.verify_key, replay_store=tmp_path / "s", max_lifetime=0)
    assert np.all(tk.Token.from_field(bytes(128)) is None)
