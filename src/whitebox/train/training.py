"""The training run: the config settled, then the loop of the steps of `steps.py` over the
batches, recorded in the run folder (run_folder.py); resume, the NaN stop, Ctrl-C."""
import dataclasses

import tensorflow as tf

from whitebox.model.checkpoints import load_generator
from whitebox.model.precision import choose, resolve_xla
from whitebox.train import data as data_lib
from whitebox.train import distribute
from whitebox.train.config import ConfigError
from whitebox.train.run_folder import RunFolder
from whitebox.train.steps import AdversarialStep, PretrainStep

SHOWN = ("g_loss_total", "d_loss_total", "recon_loss")   # beside the progress bar


def build_trainer(config, vgg=None, strategy=None):
    """The PretrainStep or AdversarialStep of `config`, built after the seeds are set."""
    tf.keras.utils.set_random_seed(config.seed)
    if config.command == "pretrain":
        return PretrainStep(config, strategy)
    if vgg is None and config.vgg:
        from whitebox.model.vgg import VGG19Conv44
        vgg = VGG19Conv44.from_file(config.vgg, trust_pickle=config.trust_pickle)
    return AdversarialStep(config, vgg, strategy)


def settle(config):
    """(a copy of `config` with absolute paths, the precision and XLA this machine runs and the
    replica count; lines for the log; the tf.distribute strategy)."""
    config = dataclasses.replace(config)
    config.validate()
    config.make_paths_absolute()
    notes = []
    config.precision = choose("tf", config.precision, warn=notes.append)[1]
    train = config.command == "train"
    if train:
        config.xla = resolve_xla(config.xla, config.precision, warn=notes.append)
    if config.precision != "fp32":
        notes.append(f"precision {config.precision}: the networks compute in it; weights, Adam "
                     "slots, filters and losses stay float32")
        if train:
            notes.append(f"VGG19 computes in {config.vgg_dtype_name()} "
                         f"(--vgg-precision {config.vgg_precision})")
    strategy = distribute.make_strategy(config.strategy, config.devices, config.peer_wait)
    config.replicas = strategy.num_replicas_in_sync
    if config.batch_size % config.replicas:
        raise ConfigError(f"batch_size {config.batch_size} does not split evenly over "
                          f"{config.replicas} replicas")
    if config.replicas > 1:
        notes.insert(0, f"strategy {config.strategy}: {config.replicas} replicas, "
                        f"{config.batch_size // config.replicas} images each")
    return config, notes, strategy


def run(config, vgg=None, echo=None, progress=True):
    """Train with `config` (left as it is); returns the step object, whose `config` is the
    settled one that config.json records. Each line of the run's log.txt also goes to
    `echo(line, problem)` when given (`problem`: a line about something wrong)."""
    config, notes, strategy = settle(config)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    chief = distribute.is_chief(strategy)
    with RunFolder(config, chief, echo, notes) as folder:
        with_cartoons = config.command == "train"
        lists, use_face, note = data_lib.load_lists(config.data_lists, with_cartoons)
        if note:
            folder.log(note)
        sampler = data_lib.BatchSampler(lists, config.batch_size, config.patch_size,
                                        config.seed, use_face, with_cartoons, config.face_every)
        trainer = build_trainer(config, vgg, strategy)
        start = folder.attach(trainer.checkpoint_objects())
        if config.init_from and not config.resume:
            prefix = load_generator(trainer.generator, config.init_from)
            folder.log(f"generator initialised from {prefix}")
        elif with_cartoons and not config.resume:
            folder.log("warning: no --init-from: the generator starts from random weights, "
                       "not from a pre-trained one as the reference does")
        _train(config, trainer, sampler, folder, start, progress and chief)
    return trainer


def _train(config, trainer, sampler, folder, start, progress):
    """The loop of `run`, from iteration `start`."""
    from tqdm import tqdm

    bar = tqdm(total=config.iterations, initial=start, disable=not progress,
               dynamic_ncols=True, desc=config.command)
    i = start - 1
    try:
        for batch in sampler.dataset(start, config.iterations):
            i = int(batch[0])
            values = {k: float(v) for k, v in trainer.iteration(*batch[1:]).items()}
            folder.record(i, values)
            bar.update(1)
            bar.set_postfix({k: f"{v:.4g}" for k, v in values.items() if k in SHOWN})
            if (i + 1) % config.sample_every == 0:
                folder.write_samples(i, trainer, sampler)
            if (i + 1) % config.save_every == 0 or i + 1 == config.iterations:
                folder.save(i)
    except tf.errors.OpError:
        if sampler.last_error is not None:
            raise sampler.last_error from None
        raise
    except KeyboardInterrupt:
        raise folder.interrupted(i + 1) from None
    finally:
        bar.close()
