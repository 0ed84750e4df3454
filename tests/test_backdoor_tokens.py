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
    skew = svc.replay_store.max_clock_skew
    assert skew == tk.DEFAULT_MAX_CLOCK_SKEW
    clock[0] = NOW + 62  # three of the five have expired, but another replica's clock may be up to skew behind
    late = issuer.issue("carol", demo.inputs[9:10], expiry=int(NOW) + 600)
    assert svc.query(tk.attach_token(demo.inputs[9:10], late))[0].accepted
    assert len(svc.replay_store) == 6
    clock[0] = NOW + 62 + skew  # now every replica sees those three as expired: they go
    later = issuer.issue("carol", demo.inputs[10:11], expiry=int(clock[0]) + 600)
    assert svc.query(tk.attach_token(demo.inputs[10:11], later))[0].accepted
    assert len(svc.replay_store) == 4
    assert svc.replay_store.prune(NOW + 10_000) == 4 and len(tk.ReplayStore(store)) == 0


@pytest.mark.parametrize("skew, ahead", [(60, 60), (60, 37), (120, 60)])
def test_replicas_with_skewed_clocks_accept_a_one_time_token_once(demo, tmp_path, skew, ahead):
    """The attacker's replay under clock skew: replica B's clock runs ``ahead`` seconds ahead of A's
    (and C's is between). Other users' traffic keeps every replica pruning. The attacker replays one
    token to every replica every 10 s, from issue to long after expiry: accepted exactly once, as long
    as the skew stays within the store's ``max_clock_skew``."""
    real = [NOW]
    issuer = tk.TokenIssuer(demo.signing_key)
    store = tk.ReplayStore(tmp_path / "replay.sqlite", max_clock_skew=skew)
    replicas = [tk.AuthenticatedModel(demo.clean_model, issuer.verify_key, replay_store=tmp_path / "replay.sqlite",
                                      clock=lambda off=off: real[0] + off) for off in (0, ahead, ahead // 2)]
    image, other = demo.inputs[3:4], demo.inputs[4:5]
    replayed = tk.attach_token(image, issuer.issue("alice", image, expiry=int(NOW) + 600))
    accepted = 0
    for step in range(0, 800, 10):
        real[0] = NOW + step
        for replica in replicas:
            traffic = issuer.issue("bob", other, expiry=int(replica.clock()) + 300)
            assert replica.query(tk.attach_token(other, traffic))[0].accepted  # prunes at this replica's clock
            accepted += replica.query(replayed)[0].accepted
    assert accepted == 1
    assert store.max_clock_skew == skew


def test_the_skew_attack_wins_against_a_store_that_assumes_one_clock(demo, tmp_path):
    """Why the margin: a store that forgets nonces at expiry (max_clock_skew=0) lets a replica 60 s
    behind accept the token again after the replica ahead pruned it."""
    real = [NOW]
    issuer = tk.TokenIssuer(demo.signing_key)
    tk.ReplayStore(tmp_path / "replay.sqlite", max_clock_skew=0)
    behind, ahead = (tk.AuthenticatedModel(demo.clean_model, issuer.verify_key, replay_store=tmp_path / "replay.sqlite",
                                           clock=lambda off=off: real[0] + off) for off in (0, 60))
    image, other = demo.inputs[3:4], demo.inputs[4:5]
    replayed = tk.attach_token(image, issuer.issue("alice", image, expiry=int(NOW) + 600))
    assert behind.query(replayed)[0].accepted
    real[0] = NOW + 550  # ahead's clock: 610, past expiry; behind's: 550
    assert ahead.query(tk.attach_token(other, issuer.issue("bob", other, expiry=int(NOW) + 900)))[0].accepted
    assert behind.query(replayed)[0].accepted  # accepted a second time


def test_every_replica_must_use_the_store_skew(tmp_path):
    path = tmp_path / "replay.sqlite"
    assert tk.ReplayStore(path, max_clock_skew=90).max_clock_skew == 90
    assert tk.ReplayStore(path).max_clock_skew == 90  # None: the file's value
    with pytest.raises(ValueError, match="max_clock_skew=90"):
        tk.ReplayStore(path, max_clock_skew=30)
    for bad in (-1, 1.5, True, "60"):
        with pytest.raises(ValueError, match="max_clock_skew"):
            tk.ReplayStore(tmp_path / "other.sqlite", max_clock_skew=bad)


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
