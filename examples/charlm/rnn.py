"""An LSTM language model, the recurrent baseline: char-rnn's model in PyTorch.

Characters are embedded, run through ``layers`` stacked LSTM layers (Hochreiter &
Schmidhuber 1997, with the forget gate of Gers et al. 2000, as ``torch.nn.LSTM`` has
it) of ``width`` units, and read out by a linear layer. It reads ``corpus.CONTEXT``
characters at once, from a zero state, and trains with the loop in ``training.py``
(what the ``data``, ``epochs`` and ``steps`` dials mean is written there).

The defaults are char-rnn's (Karpathy 2015): 2 layers of 128 units, a learning rate of
2e-3, no dropout (char-rnn steps with RMSprop over 50 characters; here Adam, as the
shared loop has it, over 128). The amount of training is cut to what one CPU core does
in about 10 s: 300 steps over 2% of the training text seen twice.
"""

import torch
from torch import nn

import pursuit
from pursuit import Float, Int

import corpus
import training


class LSTM(nn.Module):
    def __init__(self, vocab: int, layers: int, width: int, dropout: float = 0.0):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.lstm = nn.LSTM(width, width, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(width, vocab)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        states, _ = self.lstm(self.embed(codes))
        return self.head(self.drop(states))


@pursuit.method(source="Hochreiter & Schmidhuber 1997; char-rnn defaults (Karpathy 2015)",
                baseline=True)
def rnn(trial, *,
        layers=Int(1, 3, default=2, scale="params"),  # stacked LSTM layers
        width=Int(16, 256, log=True, default=128, scale="params"),  # units per layer
        steps=Int(50, 2000, log=True, default=300, scale="steps"),  # updates
        data=Float(0.002, 0.1, log=True, default=0.02, scale="data"),  # share of the text
        epochs=Float(0.5, 8.0, log=True, default=2.0, scale="epochs"),  # passes over it
        lr=Float(3e-4, 1e-2, log=True, default=2e-3),  # peak learning rate
        dropout=Float(0.0, 0.5, default=0.0)):  # between layers and before the read-out
    """Train the LSTM as the dials say; the validation bpc at the end."""
    trial.seed_everything()  # the init (torch) and the data's order (numpy, by trial.seed)
    source = corpus.load()
    model = LSTM(len(source.vocab), layers, width, dropout)
    return training.train(trial, model, source, data=data, epochs=epochs, steps=steps,
                          lr=lr, weight_decay=0.0)
