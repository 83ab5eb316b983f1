-- models sha256:f05dcc828904e73b695f5afc5f4fe3848bbf36966a2f0f1b421791c2d9688fd7

CREATE TABLE tasks (
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    owner TEXT,
    metadata JSONB,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT tasks_pkey PRIMARY KEY (id)
);

